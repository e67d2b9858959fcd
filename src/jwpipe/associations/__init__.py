"""JWST association files: load, validate, create from a file list, write.

Import-light (standard library only): workflow jobs import this.
"""

from jwpipe.associations.create import asn_from_list, member_root
from jwpipe.associations.io import load_asn, write_asn
from jwpipe.associations.model import KNOWN_EXPTYPES, Association, Member, Product
from jwpipe.associations.validate import (
    check_member_name,
    check_product_name,
    parse_asn,
    product_root,
)

__all__ = [
    "KNOWN_EXPTYPES",
    "Association",
    "Member",
    "Product",
    "asn_from_list",
    "check_member_name",
    "check_product_name",
    "load_asn",
    "member_root",
    "parse_asn",
    "product_root",
    "write_asn",
]
