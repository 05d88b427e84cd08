"""The asyncpg profile reader connects as SQLAlchemy's engine does: same server, same
credentials, the URL's query as connect arguments (an SSL requirement is not dropped)."""

from app.db.profiles import connect_options


def test_the_drivers_name_and_the_query_leave_the_dsn_and_the_query_becomes_arguments() -> None:
    dsn, options = connect_options(
        "postgresql+asyncpg://app:s3cret@db.example:6432/recsys?ssl=require&server_settings=x"
    )
    assert dsn == "postgresql://app:s3cret@db.example:6432/recsys"
    assert options == {"ssl": "require", "server_settings": "x"}


def test_a_plain_url_has_no_arguments() -> None:
    assert connect_options("postgresql+asyncpg://postgres@127.0.0.1:5432/test") == (
        "postgresql://postgres@127.0.0.1:5432/test",
        {},
    )


def test_sqlalchemys_cache_size_becomes_asyncpgs_typed_as_the_dialect_types_it() -> None:
    _, options = connect_options(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/test?prepared_statement_cache_size=100"
    )
    assert options == {"statement_cache_size": 100}


def test_asyncpgs_own_cache_size_wins_over_sqlalchemys() -> None:
    _, options = connect_options(
        "postgresql+asyncpg://h/db?prepared_statement_cache_size=100&statement_cache_size=7"
    )
    assert options == {"statement_cache_size": "7"}
