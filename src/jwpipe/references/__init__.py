"""Reference files: selection from a CRDS cache through the ``crds`` client, and CRDS caches.

Public API::

    cache = CrdsCache("/path/to/crds_cache")         # or open_cache(...); context from
    cache.context                                    # $CRDS_CONTEXT or the cache's server_config
    cache.get_reference_file(params, "dark")         # absolute path in the cache, or "N/A"
    cache.best_references(params, ["dark", "gain"])  # several types in one crds call
    cache.explain(params, "dark")                    # which rmap decides, on which values
    write_context(cache_dir, {"NIRCAM": {"dark": [CacheRule(...)], "ipc": "N/A"}})
    derive_context(cache_dir, "jwst_0001.pmap", {"NIRCAM": {"gain": [CacheRule(...)]}})
    check_reference_matches(ref_header, sci_params, ref_shape, sci_shape) -> (yslice, xslice)
    subarray_slices(ref_params, sci_params, ref_shape, sci_shape) -> (yslice, xslice)
"""

from jwpipe._lazy import lazy_getattr

#: name -> module under jwpipe.references; imported when first used, so a workflow job that
#: only records a reference's CRDS name does not load the cache writer or the subarray logic
_MODULES = {
    **dict.fromkeys(["NOT_APPLICABLE", "PARKEYS", "CacheRule", "derive_context",
                     "install_reference", "mapping_checksum", "rule_from_file", "write_context"],
                    "cache_writer"),
    **dict.fromkeys(["CRDS_URI", "CrdsCache", "crds_parameters", "crds_version", "open_cache"],
                    "crds_cache"),
    **dict.fromkeys(["parameters_from_file", "read_reference_header"], "headers"),
    **dict.fromkeys(["check_reference_matches", "region_of", "subarray_slices"], "subarray"),
}

__all__ = [
    "CRDS_URI",
    "NOT_APPLICABLE",
    "PARKEYS",
    "CacheRule",
    "CrdsCache",
    "check_reference_matches",
    "crds_parameters",
    "crds_version",
    "derive_context",
    "install_reference",
    "mapping_checksum",
    "open_cache",
    "parameters_from_file",
    "read_reference_header",
    "region_of",
    "rule_from_file",
    "subarray_slices",
    "write_context",
]

__getattr__ = lazy_getattr("jwpipe.references", _MODULES)
