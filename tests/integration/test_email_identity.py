"""One account per mailbox: spellings of one address find one account; lookalikes are refused."""

from __future__ import annotations

import pytest

from helpers import PASSWORD, register

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"


async def sign_up(client, email: str):
    return await client.post(REGISTER, json={"email": email, "password": PASSWORD, "name": "Someone"})


def refused_email(response) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    (error,) = body["errors"]
    assert error["field"] == "email"
    return str(error["message"])


@pytest.mark.parametrize(
    "spelling",
    [
        "ada@d.test.",  # the DNS root dot
        "\uff41\uff44\uff41@\uff44.\uff54\uff45\uff53\uff54",  # fullwidth
        "ADA@D.Test",
    ],
)
async def test_spellings_of_one_mailbox_are_one_account(client, spelling):
    first = await register(client, email="ada@d.test")
    again = await sign_up(client, spelling)
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "email_taken"
    signed_in = await client.post(LOGIN, json={"email": spelling, "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["id"] == first["user"]["id"]


async def test_a_decomposed_accent_is_the_composed_letter(client):
    await register(client, email="ad\u00e1@d.test")
    assert (await sign_up(client, "ada\u0301@d.test")).status_code == 409


async def test_an_international_domain_is_stored_in_its_ascii_form(client):
    created = await register(client, email="eve@B\u00fccher.example")
    assert created["user"]["email"] == "eve@xn--bcher-kva.example"
    assert (await sign_up(client, "eve@xn--bcher-kva.example")).status_code == 409
    assert (
        await client.post(LOGIN, json={"email": "eve@b\u00fcCHER.example", "password": PASSWORD})
    ).status_code == 200


@pytest.mark.parametrize(
    ("email", "why"),
    [
        ("ada\u200b@d.test", "invisible"),  # a zero-width space before @
        ("a\u00adda@d.test", "invisible"),  # a soft hyphen
        ("ad\u202ea@d.test", "bidirectional"),  # a right-to-left override (refused in any text)
        ("\u0430da@d.test", "mixes writing systems"),  # Cyrillic a among Latin letters
        ("p\u0435ter@d.test", "mixes writing systems"),  # Cyrillic e
        ("\u0130brahim@d.test", "accent"),  # Turkish dotted capital I: lower-cased it is i plus a dot
        ("ada@d..test", "domain"),
    ],
)
async def test_lookalike_and_invisible_addresses_are_refused(client, email, why):
    message = refused_email(await sign_up(client, email))
    assert why in message, message


async def test_an_address_in_one_other_script_is_welcome(client):
    created = await register(client, email="\u0430\u043d\u043d\u0430@d.test")
    assert created["user"]["email"] == "\u0430\u043d\u043d\u0430@d.test"
