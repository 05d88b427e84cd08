"""A catalog's files as validated records, streamed in batches.

What is read, and how each value is checked and stored, is the catalog config's
(app/catalog.py). Generic catalogs are CSV with a header row (the config's delimiter and
encoding; quoted fields may hold delimiters and newlines) or Parquet, by extension;
`movielens-100k` catalogs are GroupLens' original files (training/movielens.py names
their columns). Files are read a batch at a time, so memory does not grow with them.

Every problem is a CatalogFileError naming the file, the line (for Parquet: the row,
counted from 1) and the column, e.g. `ratings.csv:17: column 'rating': 7.0 is outside
0.5..5.0`.

Records are NamedTuples rather than pydantic models: a large catalog has tens of millions
of events, and the checks below are the validation.
"""

import csv
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

from app.catalog import CatalogConfig, FieldSpec, InteractionsSpec, Kind
from app.db.tables import ID_LENGTH
from training import movielens

BATCH_ROWS = 20_000
Part = Literal["users", "items", "interactions"]
Row = Sequence[str | None]  # one line's values, by column
T = TypeVar("T")


class CatalogFileError(ValueError):
    """A catalog file is missing or malformed; the message names file, line and column."""


class Entity(NamedTuple):
    """A user or an item: its id and its declared fields (None where missing)."""

    line: int
    id: str
    attributes: dict[str, Any]


class Event(NamedTuple):
    line: int
    user_id: str
    item_id: str
    rating: float | None
    event_type: str
    occurred_at: datetime  # timezone-aware, UTC


class Source(NamedTuple):
    """An open file: its columns, and its rows numbered by (first) line."""

    path: Path
    columns: list[str]
    rows: Iterator[tuple[int, Row]]


def file_of(config: CatalogConfig, folder: Path, part: Part) -> Path:
    spec = getattr(config, part)
    if spec is None:
        raise CatalogFileError(f"catalog {config.name!r} declares no {part} file")
    return folder / spec.file


def check_files(config: CatalogConfig, folder: Path) -> None:
    """Open every declared file and check its columns (no rows read): a missing file or
    column fails before anything else happens."""
    parts: list[Part] = ["items", "interactions"]
    for part in ["users", *parts] if config.users else parts:
        with _open(config, folder, part) as source:
            _positions(source, _needed(config, part))


def read_users(config: CatalogConfig, folder: Path) -> Iterator[list[Entity]]:
    assert config.users is not None, "a catalog without a users file has no users to read"
    return _entities(config, folder, "users", config.users.id, config.user_fields)


def read_items(config: CatalogConfig, folder: Path) -> Iterator[list[Entity]]:
    return _entities(config, folder, "items", config.items.id, config.item_fields)


def read_interactions(config: CatalogConfig, folder: Path) -> Iterator[list[Event]]:
    with _open(config, folder, "interactions") as source:
        yield from _batches(_event_parser(source, config.interactions), source.rows)


def _entities(
    config: CatalogConfig, folder: Path, part: Part, id_column: str, fields: list[FieldSpec]
) -> Iterator[list[Entity]]:
    with _open(config, folder, part) as source:
        yield from _batches(_entity_parser(source, id_column, fields), source.rows)


def _batches(parse: Callable[[int, Row], T], rows: Iterator[tuple[int, Row]]) -> Iterator[list[T]]:
    batch: list[T] = []
    for line, row in rows:
        batch.append(parse(line, row))
        if len(batch) == BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _needed(config: CatalogConfig, part: Part) -> list[str]:
    if part == "interactions":
        return _needed_events(config.interactions)
    fields = config.user_fields if part == "users" else config.item_fields
    return [getattr(config, part).id, *(f.source for f in fields)]


def _positions(source: Source, names: list[str]) -> dict[str, int]:
    missing = [n for n in names if n not in source.columns]
    if missing:
        has = ", ".join(source.columns) or "none"
        raise CatalogFileError(f"{source.path}: no column {missing[0]!r} (columns: {has})")
    return {name: source.columns.index(name) for name in names}


# Parsers: one closure per file, with the column positions looked up once.


def _entity_parser(
    source: Source, id_column: str, fields: list[FieldSpec]
) -> Callable[[int, Row], Entity]:
    at = _positions(source, [id_column, *(f.source for f in fields)])
    plan = [(f.name, f.source, at[f.source], f.clean, f.kind == Kind.numeric) for f in fields]
    id_at = at[id_column]

    def parse(line: int, row: Row) -> Entity:
        column = id_column
        try:
            ident = _ident(row[id_at])
            attributes: dict[str, Any] = {}
            # `column` is the loop's own variable, so a failure names the field's column.
            for name, column, index, clean, numeric in plan:  # noqa: B007
                value = clean(row[index])
                attributes[name] = _number(value) if numeric and value is not None else value
        except ValueError as exc:
            raise CatalogFileError(f"{source.path}:{line}: column {column!r}: {exc}") from None
        return Entity(line, ident, attributes)

    return parse


def _event_parser(source: Source, spec: InteractionsSpec) -> Callable[[int, Row], Event]:
    at = _positions(source, _needed_events(spec))
    user_at, item_at, time_at = at[spec.user], at[spec.item], at[spec.timestamp]
    rating_at = at[spec.rating] if spec.rating else None
    kind_at = at[spec.event_type] if spec.event_type else None
    to_time = TIMESTAMPS[spec.timestamp_format]
    to_rating = _rating_reader(spec.rating_range)
    to_kind = _kind_reader(spec.event_types)
    default_kind = spec.event_types[0]

    def parse(line: int, row: Row) -> Event:
        column = spec.user
        try:
            user_id = _ident(row[user_at])
            column = spec.item
            item_id = _ident(row[item_at])
            column = spec.timestamp
            occurred_at = to_time(row[time_at])
            column = spec.rating or ""
            rating = None if rating_at is None else to_rating(row[rating_at])
            column = spec.event_type or ""
            kind = default_kind if kind_at is None else to_kind(row[kind_at])
        except ValueError as exc:
            raise CatalogFileError(f"{source.path}:{line}: column {column!r}: {exc}") from None
        return Event(line, user_id, item_id, rating, kind, occurred_at)

    return parse


def _needed_events(spec: InteractionsSpec) -> list[str]:
    optional = [c for c in (spec.rating, spec.event_type) if c is not None]
    return [spec.user, spec.item, spec.timestamp, *optional]


# Values: each raises ValueError saying what is wrong with it (the parser adds where).


def _ident(value: str | None) -> str:
    ident = value.strip() if value else ""
    if not ident:
        raise ValueError("missing id")
    if len(ident) > ID_LENGTH:
        raise ValueError(f"id longer than {ID_LENGTH} characters: {ident[:20]!r}...")
    return ident


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):  # JSON (and so the attributes column) has no NaN
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _rating_reader(bounds: tuple[float, float] | None) -> Callable[[str | None], float | None]:
    low, high = bounds or (-math.inf, math.inf)

    def rating(text: str | None) -> float | None:
        if text is None or not text.strip():
            return None  # an event without a rating (a view in a mixed file)
        value = float(_number(text))
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}..{high}")
        return value

    return rating


def _kind_reader(kinds: list[str]) -> Callable[[str | None], str]:
    known = frozenset(kinds)

    def kind(text: str | None) -> str:
        value = text.strip() if text else ""
        if not value:
            return kinds[0]  # the config's kind of a row without one
        if value not in known:
            raise ValueError(f"{value!r} is not one of the event types ({', '.join(kinds)})")
        return value

    return kind


def _unix(text: str | None) -> datetime:
    if text is None or not text.strip():
        raise ValueError("missing timestamp")
    try:
        seconds: float = int(text)
    except ValueError:
        try:
            seconds = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a unix time (seconds since 1970)") from None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{text!r} is not a unix time in range") from None


def _iso(text: str | None) -> datetime:
    if text is None or not text.strip():
        raise ValueError("missing timestamp")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp") from None
    # No zone means UTC: a file's local time would shift with the loading machine's zone.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _auto(text: str | None) -> datetime:
    try:
        return _unix(text)
    except ValueError:
        pass
    try:
        return _iso(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a unix time nor an ISO 8601 timestamp") from None


TIMESTAMPS: dict[str, Callable[[str | None], datetime]] = {
    "unix": _unix,
    "iso": _iso,
    "auto": _auto,
}


# Files: CSV, Parquet, MovieLens 100K's own layout.


@contextmanager
def _open(config: CatalogConfig, folder: Path, part: Part) -> Iterator[Source]:
    path = file_of(config, folder, part)
    if not path.is_file():
        raise CatalogFileError(f"{path}: no such file (the catalog's {part}.file)")
    if config.format == "movielens-100k":
        opened = _movielens(path, config.encoding, part)
    elif path.suffix.lower() == ".parquet":
        opened = _parquet(path, _needed(config, part))
    else:
        opened = _csv(path, config.encoding, config.delimiter)
    with opened as source:
        yield source


def _encoding(name: str) -> str:
    # utf-8-sig reads plain UTF-8 too, and keeps a spreadsheet's byte-order mark out of
    # the first column's name.
    return "utf-8-sig" if name.lower().replace("_", "-") in ("utf-8", "utf8") else name


@contextmanager
def _csv(path: Path, encoding: str, delimiter: str) -> Iterator[Source]:
    with path.open(encoding=_encoding(encoding), newline="") as handle:
        # strict: a stray or unclosed quote is an error, not a silently merged field.
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        rows = _csv_rows(reader, path)
        header = next(rows, None)
        if header is None:
            raise CatalogFileError(f"{path}: empty file (expected a header row)")
        columns = [name.strip() for name in header[1]]
        yield Source(path, columns, _csv_checked(rows, path, len(columns)))


def _csv_rows(reader: Any, path: Path) -> Iterator[tuple[int, list[str]]]:
    line = 1
    try:
        for row in reader:
            if row:  # a blank line carries nothing
                yield line, row
            line = reader.line_num + 1
    except csv.Error as exc:
        raise CatalogFileError(f"{path}:{line}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise CatalogFileError(f"{path}:{line}: not {exc.encoding} text ({exc.reason})") from None


def _csv_checked(
    rows: Iterator[tuple[int, list[str]]], path: Path, width: int
) -> Iterator[tuple[int, Row]]:
    for line, row in rows:
        if len(row) != width:  # a short row would shift every value after the gap
            raise CatalogFileError(
                f"{path}:{line}: expected {width} columns as in the header, found {len(row)}"
            )
        yield line, row


@contextmanager
def _movielens(path: Path, encoding: str, part: Part) -> Iterator[Source]:
    columns = list(movielens.LAYOUTS[part].columns)
    with path.open(encoding=encoding) as handle:
        yield Source(path, columns, _movielens_rows(handle, path, part))


def _movielens_rows(handle: Any, path: Path, part: Part) -> Iterator[tuple[int, Row]]:
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            values = movielens.split_line(part, text.rstrip("\r\n"))
        except ValueError as exc:
            raise CatalogFileError(f"{path}:{number}: {exc}") from None
        yield number, values


@contextmanager
def _parquet(path: Path, needed: list[str]) -> Iterator[Source]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise CatalogFileError(f"{path}: not a Parquet file ({exc})") from None
    with parquet:
        names = parquet.schema_arrow.names
        # Only the columns the config reads: a wide file costs what it is used for.
        columns = list(dict.fromkeys(needed))
        missing = [n for n in columns if n not in names]
        if missing:
            raise CatalogFileError(
                f"{path}: no column {missing[0]!r} (columns: {', '.join(names)})"
            )
        yield Source(path, columns, _parquet_rows(parquet, path, columns))


def _parquet_rows(parquet: Any, path: Path, columns: list[str]) -> Iterator[tuple[int, Row]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    line = 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
        values = []
        for name in columns:
            try:  # as text, the form a CSV file gives: one set of checks for both
                values.append(pc.cast(batch.column(name), pa.string()).to_pylist())
            except pa.ArrowException:
                kind = batch.column(name).type
                raise CatalogFileError(f"{path}: column {name!r}: {kind} cannot be read") from None
        for row in zip(*values, strict=True):
            line += 1
            yield line, row


CATALOGS = Path(__file__).parent / "catalogs"  # the shipped configs, by name


def shipped_catalogs() -> list[str]:
    return sorted(path.stem for path in CATALOGS.glob("*.toml"))


def find_catalog(name_or_path: str) -> Path:
    """A catalog config file, or a shipped one by name (training/catalogs/NAME.toml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CATALOGS / f"{name_or_path}.toml"
    if path.name == name_or_path and shipped.is_file():
        return shipped
    raise CatalogFileError(
        f"{name_or_path}: no such catalog config file, nor a shipped catalog "
        f"({', '.join(shipped_catalogs())})"
    )
