"""The catalog: titles, genres, search, trending, new releases and recommendations."""
