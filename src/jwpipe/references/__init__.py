"""Local reference-file store: CRDS-like selection of reference and parameter files.

Public API::

    store = ReferenceStore("/path/to/refs")          # or get_store() / get_store(path)
    store.context                                    # e.g. "jwpipe-sim_3fa2c1d09b7e"
    store.get_reference_file(params, "dark")         # absolute path, or "N/A"
    store.explain(params, "dark")                    # why
    build_index("/path/to/refs")                     # (re)write index.yaml from file headers
    check_reference_matches(ref_header, sci_params, ref_shape, sci_shape) -> (yslice, xslice)
    subarray_slices(ref_params, sci_params, ref_shape, sci_shape) -> (yslice, xslice)
"""

from jwpipe.references.index import (
    INDEX_NAME,
    NOT_APPLICABLE,
    IndexEntry,
    StoreIndex,
    build_index,
    parameters_from_file,
    read_index,
    read_reference_header,
)
from jwpipe.references.store import ReferenceStore, get_store, is_parameter_reftype
from jwpipe.references.subarray import check_reference_matches, region_of, subarray_slices

__all__ = [
    "INDEX_NAME",
    "NOT_APPLICABLE",
    "IndexEntry",
    "ReferenceStore",
    "StoreIndex",
    "build_index",
    "check_reference_matches",
    "get_store",
    "is_parameter_reftype",
    "parameters_from_file",
    "read_index",
    "read_reference_header",
    "region_of",
    "subarray_slices",
]
