"""The words a report speaks of its catalog in: the names `governance.selectors.catalog_by_key` gives."""
from governance.labels import CatalogLabels


def labels_of(names: dict) -> CatalogLabels:
    """The catalog's names as `catalog_by_key` gives them, to write targets with."""
    return CatalogLabels(**{section: {key: entry["name"] for key, entry in entries.items()}
                            for section, entries in names.items()})
