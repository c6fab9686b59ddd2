"""A demo catalog for a first look: 8 genres and 44 invented titles. Running it again adds only what is missing.

Titles span all three access levels; a few are unpublished (drafts an admin can see), a few are
shorts under five minutes (never resumable), and most have ``credits_start_seconds`` set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from reelhouse.catalog.models import Content, Genre
from reelhouse.plans.models import AccessLevel

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

FREE, BASIC, PREMIUM = AccessLevel.FREE, AccessLevel.BASIC, AccessLevel.PREMIUM

DEMO_GENRES = {
    "drama": "Drama",
    "comedy": "Comedy",
    "sci-fi": "Science Fiction",
    "thriller": "Thriller",
    "documentary": "Documentary",
    "animation": "Animation",
    "horror": "Horror",
    "romance": "Romance",
}


@dataclass(frozen=True, slots=True)
class DemoTitle:
    title: str
    year: int
    duration_seconds: int
    access_level: AccessLevel
    genres: tuple[str, ...]
    description: str
    #: Seconds of end credits; 0 means the title has no credits marker.
    credits_seconds: int = 0
    published: bool = True


def _minutes(minutes: int) -> int:
    return minutes * 60


DEMO_TITLES = [
    DemoTitle(
        "The Lighthouse Keeper's Daughter",
        2019,
        _minutes(118),
        FREE,
        ("drama", "romance"),
        "On a storm-bound island, a young woman inherits her father's lighthouse and his unfinished letters.",
        credits_seconds=420,
    ),
    DemoTitle(
        "Quiet Harbour",
        2021,
        _minutes(104),
        BASIC,
        ("drama",),
        "A retired ferry captain and his estranged son run the last crossing of a dying harbour town.",
        credits_seconds=360,
    ),
    DemoTitle(
        "Paper Cranes",
        2016,
        _minutes(96),
        FREE,
        ("drama", "animation"),
        "A hand-drawn story of a girl who folds a thousand cranes to bring her grandmother home.",
        credits_seconds=300,
    ),
    DemoTitle(
        "The Last Summer on Elm Street",
        2022,
        _minutes(122),
        PREMIUM,
        ("drama",),
        "Four childhood friends return to the street they grew up on before the houses are torn down.",
        credits_seconds=480,
    ),
    DemoTitle(
        "Salt and Iron",
        2023,
        _minutes(131),
        PREMIUM,
        ("drama", "thriller"),
        "A steelworks strike turns a family against itself when the union vote is rigged.",
        credits_seconds=510,
    ),
    DemoTitle(
        "Kitchen Confidential Affairs",
        2020,
        _minutes(92),
        FREE,
        ("comedy", "romance"),
        "Two rival chefs are forced to share one tiny kitchen during the busiest week of the year.",
        credits_seconds=330,
    ),
    DemoTitle(
        "Uncle Barry's Wedding",
        2018,
        _minutes(99),
        BASIC,
        ("comedy",),
        "Everything that can go wrong at a wedding does, and then Uncle Barry gives a speech.",
        credits_seconds=300,
    ),
    DemoTitle(
        "The Substitute Detective",
        2022,
        _minutes(101),
        BASIC,
        ("comedy", "thriller"),
        "A substitute teacher is mistaken for a famous detective and has one weekend to solve a theft.",
        credits_seconds=320,
    ),
    DemoTitle(
        "Office Plants",
        2024,
        240,
        FREE,
        ("comedy", "animation"),
        "A four-minute short about the secret social lives of the plants on the fourth floor.",
    ),
    DemoTitle(
        "Deadline Day",
        2021,
        _minutes(88),
        PREMIUM,
        ("comedy",),
        "A newspaper's final print edition goes to press with every reporter chasing the same wrong story.",
        credits_seconds=280,
    ),
    DemoTitle(
        "Orbital Decay",
        2023,
        _minutes(127),
        PREMIUM,
        ("sci-fi", "thriller"),
        "The crew of an ageing space station has ninety minutes to stop it falling out of the sky.",
        credits_seconds=540,
    ),
    DemoTitle(
        "The Cartographer of Mars",
        2020,
        _minutes(115),
        BASIC,
        ("sci-fi", "drama"),
        "The first person born on Mars sets out to map the planet her parents never left.",
        credits_seconds=450,
    ),
    DemoTitle(
        "Signal From Proxima",
        2017,
        _minutes(109),
        FREE,
        ("sci-fi",),
        "A radio astronomer receives a message that repeats her own voice, forty years in the future.",
        credits_seconds=390,
    ),
    DemoTitle(
        "Neon Tide",
        2024,
        _minutes(134),
        PREMIUM,
        ("sci-fi", "thriller"),
        "In a flooded megacity, a courier carries a memory that three corporations want erased.",
        credits_seconds=600,
    ),
    DemoTitle(
        "Small Steps",
        2022,
        180,
        FREE,
        ("sci-fi", "animation"),
        "A three-minute short: a lunar rover that refuses to stop exploring after its mission ends.",
    ),
    DemoTitle(
        "Generation Ship",
        2025,
        _minutes(141),
        PREMIUM,
        ("sci-fi", "drama"),
        "Two hundred years into the voyage, the ship's archivist discovers the destination was a lie.",
        credits_seconds=570,
        published=False,
    ),
    DemoTitle(
        "The Night Ferry",
        2019,
        _minutes(97),
        BASIC,
        ("thriller",),
        "A passenger vanishes on an overnight crossing and nobody on board admits she was ever there.",
        credits_seconds=340,
    ),
    DemoTitle(
        "Cold Ledger",
        2021,
        _minutes(112),
        PREMIUM,
        ("thriller", "drama"),
        "A junior accountant finds one number that does not add up, and everyone who noticed it before is gone.",
        credits_seconds=420,
    ),
    DemoTitle(
        "Whiteout",
        2018,
        _minutes(94),
        FREE,
        ("thriller",),
        "Snowed in at a mountain observatory, five scientists realise one of them is not who they claim.",
        credits_seconds=300,
    ),
    DemoTitle(
        "The Informant's Daughter",
        2023,
        _minutes(119),
        BASIC,
        ("thriller", "drama"),
        "Twenty years after her father testified, a witness-protection child goes looking for her real name.",
        credits_seconds=460,
    ),
    DemoTitle(
        "Glass Houses",
        2025,
        _minutes(105),
        PREMIUM,
        ("thriller",),
        "A smart-home designer is locked inside her own showcase house by the software she wrote.",
        credits_seconds=380,
        published=False,
    ),
    DemoTitle(
        "Deep Currents: The Living Ocean",
        2020,
        _minutes(89),
        FREE,
        ("documentary",),
        "From kelp forests to abyssal plains, a year following the currents that feed the planet.",
        credits_seconds=240,
    ),
    DemoTitle(
        "The Bread Makers",
        2019,
        _minutes(74),
        FREE,
        ("documentary",),
        "Six bakers on four continents, and the centuries-old recipes they refuse to change.",
        credits_seconds=200,
    ),
    DemoTitle(
        "Voltage: The Race to Store the Sun",
        2023,
        _minutes(98),
        BASIC,
        ("documentary",),
        "Inside the labs and factories trying to build the battery that changes everything.",
        credits_seconds=260,
    ),
    DemoTitle(
        "Last of the Lamplighters",
        2021,
        270,
        FREE,
        ("documentary",),
        "A four-and-a-half-minute portrait of the last man who lights a city's gas lamps by hand.",
    ),
    DemoTitle(
        "Chess in the Park",
        2022,
        _minutes(81),
        BASIC,
        ("documentary",),
        "A season with the hustlers, grandmasters and retirees who play at the same twelve stone tables.",
        credits_seconds=210,
    ),
    DemoTitle(
        "Above the Tree Line",
        2024,
        _minutes(112),
        PREMIUM,
        ("documentary",),
        "Filmed over three winters: the animals that live where almost nothing grows.",
        credits_seconds=300,
    ),
    DemoTitle(
        "Pip and the Moon Lantern",
        2018,
        _minutes(84),
        FREE,
        ("animation", "comedy"),
        "A small fox borrows the moon to find her way home and has to return it before morning.",
        credits_seconds=330,
    ),
    DemoTitle(
        "Clockwork Garden",
        2021,
        _minutes(91),
        BASIC,
        ("animation",),
        "A brass gardener tends the last green place in a city of gears, until a real seed arrives.",
        credits_seconds=350,
    ),
    DemoTitle(
        "The Cloud Shepherds",
        2023,
        _minutes(95),
        PREMIUM,
        ("animation", "sci-fi"),
        "Two siblings herd rain clouds across a drying world in a floating airship.",
        credits_seconds=380,
    ),
    DemoTitle(
        "Blink",
        2020,
        150,
        FREE,
        ("animation", "horror"),
        "A two-and-a-half-minute animated short. Don't.",
    ),
    DemoTitle(
        "The Hollow Road",
        2019,
        _minutes(93),
        BASIC,
        ("horror",),
        "A family takes a shortcut through the forest that does not appear on any map, twice.",
        credits_seconds=300,
    ),
    DemoTitle(
        "Static",
        2022,
        _minutes(86),
        PREMIUM,
        ("horror", "thriller"),
        "A late-night radio host starts taking calls from listeners who died decades ago.",
        credits_seconds=290,
    ),
    DemoTitle(
        "The Orchard",
        2017,
        _minutes(99),
        FREE,
        ("horror",),
        "Every autumn one more tree grows in the orchard, and one more villager goes missing.",
        credits_seconds=310,
    ),
    DemoTitle(
        "Wakeful",
        2024,
        _minutes(102),
        PREMIUM,
        ("horror",),
        "A sleep-study volunteer discovers the other patients have not slept in years.",
        credits_seconds=340,
    ),
    DemoTitle(
        "Under the Floorboards",
        2025,
        _minutes(90),
        BASIC,
        ("horror",),
        "Renovating a Victorian terrace, a young couple finds letters addressed to them.",
        credits_seconds=300,
        published=False,
    ),
    DemoTitle(
        "Letters to Lisbon",
        2018,
        _minutes(108),
        FREE,
        ("romance", "drama"),
        "A translator and a cellist fall in love through the letters she is paid to translate for him.",
        credits_seconds=360,
    ),
    DemoTitle(
        "Second Chances at the Seaside Hotel",
        2021,
        _minutes(97),
        BASIC,
        ("romance", "comedy"),
        "Divorced for ten years, two hotel owners must run one hotel together for a single summer.",
        credits_seconds=330,
    ),
    DemoTitle(
        "The Map of Small Things",
        2022,
        _minutes(103),
        PREMIUM,
        ("romance",),
        "Two strangers relive the same day and start charting everything that is perfect in it.",
        credits_seconds=350,
    ),
    DemoTitle(
        "Rain Check",
        2023,
        285,
        FREE,
        ("romance", "comedy"),
        "A four-minute short about two people sheltering under the same awning, every Tuesday.",
    ),
    DemoTitle(
        "Midnight at the Observatory",
        2024,
        _minutes(111),
        PREMIUM,
        ("romance", "sci-fi"),
        "An astronomer and a night guard share the telescope, and the comet they both want to name.",
        credits_seconds=420,
    ),
    DemoTitle(
        "The Understudy",
        2020,
        _minutes(106),
        BASIC,
        ("drama", "comedy"),
        "A theatre understudy gets her big break when the star vanishes on opening night.",
        credits_seconds=340,
    ),
    DemoTitle(
        "Frontier of Silence",
        2016,
        _minutes(137),
        PREMIUM,
        ("drama", "thriller"),
        "A remote border post, a single radio, and a winter in which the other side stops answering.",
        credits_seconds=560,
    ),
    DemoTitle(
        "Making Of: Orbital Decay",
        2023,
        290,
        FREE,
        ("documentary", "sci-fi"),
        "Behind the scenes of Orbital Decay: building a space station that had to fall apart on cue.",
    ),
]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


async def seed_demo_catalog(session: AsyncSession) -> list[str]:
    """Add the demo genres and titles that are missing (by genre slug and by title); say what was added."""
    lines: list[str] = []
    genres = {genre.slug: genre for genre in await session.scalars(select(Genre))}
    added_genres = []
    for slug, name in DEMO_GENRES.items():
        if slug not in genres:
            genres[slug] = Genre(slug=slug, name=name)
            session.add(genres[slug])
            added_genres.append(slug)
    if added_genres:
        lines.append(f"genres added: {', '.join(added_genres)}")

    existing = set((await session.scalars(select(Content.title))).all())
    now = datetime.now(UTC)
    added = 0
    for index, demo in enumerate(DEMO_TITLES):
        if demo.title in existing:
            continue
        slug = _slug(demo.title)
        session.add(
            Content(
                title=demo.title,
                description=demo.description,
                access_level=demo.access_level,
                duration_seconds=demo.duration_seconds,
                credits_start_seconds=demo.duration_seconds - demo.credits_seconds if demo.credits_seconds else None,
                release_year=demo.year,
                thumbnail_url=f"https://img.example.com/titles/{slug}.jpg",
                trailer_url=f"https://media.example.com/trailers/{slug}/master.m3u8",
                video_url=f"https://media.example.com/titles/{slug}/master.m3u8",
                published=demo.published,
                # Spread over the last weeks so "new releases" has an order to show.
                published_at=now - timedelta(days=len(DEMO_TITLES) - index) if demo.published else None,
                genres=[genres[genre] for genre in demo.genres],
            )
        )
        added += 1
    if added:
        await session.flush()
        lines.append(f"titles added: {added}")
    else:
        lines.append("demo catalog already present")
    return lines
