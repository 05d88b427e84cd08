"""What a version holds about each item beyond its vectors, computed once at export from
the catalog: the metadata `returnMetadata` answers with and the business filters' index."""

from app.catalog import Kind
from training.dataset import Catalog


def item_metadata(catalog: Catalog) -> list[dict]:
    """What `returnMetadata=true` answers for each item row: the catalog's metadata fields
    (multi-valued ones as lists), computed once here, never per request."""
    config, names = catalog.config, catalog.config.items.metadata
    columns = {name: catalog.items[name].tolist() for name in names}
    rows = []
    for row in range(len(catalog.item_ids)):
        stored = {name: _plain(columns[name][row]) for name in names}
        rows.append(config.metadata_of(stored))
    return rows


def item_filters(catalog: Catalog) -> dict[str, dict[str, list[int]]]:
    """Every categorical item field's values and the index rows holding each: what a
    request's business filters select (`?genres=Comedy`), computed once per version."""
    filters: dict[str, dict[str, list[int]]] = {}
    for spec in catalog.config.item_fields:
        if spec.kind not in (Kind.categorical, Kind.multi_categorical):
            continue
        rows: dict[str, list[int]] = {}
        for row, stored in enumerate(catalog.items[spec.name].tolist()):
            values = spec.values_of(stored) if spec.kind == Kind.multi_categorical else [stored]
            for value in values:
                if value is not None:
                    rows.setdefault(str(value), []).append(row)
        filters[spec.name] = rows
    return filters


def _plain(value: object) -> object:
    """A stored value as JSON: NaN (a missing number) as null, whole numbers as ints."""
    if isinstance(value, float):
        if value != value:
            return None
        return int(value) if value.is_integer() else value
    return value
