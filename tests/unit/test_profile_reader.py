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


def test_arguments_are_typed_as_sqlalchemys_dialect_types_them() -> None:
    _, options = connect_options(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/test?prepared_statement_cache_size=100"
    )
    assert options == {"prepared_statement_cache_size": 100}
