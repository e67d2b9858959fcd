"""ModelContainer: an ordered list of models, e.g. the members of an association."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

from jwpipe.datamodels.model_base import DataModel
from jwpipe.errors import AssociationError, DataModelError

__all__ = ["ModelContainer"]

Member = DataModel | str


class ModelContainer(Sequence):
    """A list of models that may be built from paths, models or an association file.

    Parameters
    ----------
    init : iterable of (str, os.PathLike, DataModel), str/os.PathLike of an association
        ``.json``, ModelContainer, or None
        The members.
    lazy : bool
        If True (default), members given as paths stay paths: indexing or iterating opens the
        file each time and the container keeps no reference to the opened model, so a long
        list never holds more than the models the caller keeps. Use ``container[i] = model``
        to store a modified model. If False, every path is opened at construction.
    exptypes : iterable of str, optional
        For an association: member ``exptype`` values to keep (default: all).

    Attributes
    ----------
    asn_table : dict or None
        The association loaded, if any.
    exptypes : list of str
        ``exptype`` per member (``"science"`` when unknown).
    """

    crds_observatory = "jwst"

    def __init__(
        self,
        init: Any = None,
        *,
        lazy: bool = True,
        exptypes: Iterable[str] | None = None,
    ) -> None:
        self._members: list[Member] = []
        self.exptypes: list[str] = []
        self.asn_table: dict[str, Any] | None = None
        self.asn_table_name: str | None = None
        self._lazy = lazy
        if init is None:
            return
        if isinstance(init, ModelContainer):
            self._members = list(init._members)
            self.exptypes = list(init.exptypes)
            self.asn_table = init.asn_table
            self.asn_table_name = init.asn_table_name
            return
        if isinstance(init, str | os.PathLike):
            self._from_asn(os.fspath(init), exptypes)
            return
        if isinstance(init, DataModel):
            init = [init]
        for item in init:
            self.append(item)

    def _from_asn(self, path: str, exptypes: Iterable[str] | None) -> None:
        if not os.path.exists(path):
            raise DataModelError(f"{path} does not exist")
        try:
            with open(path, encoding="utf-8") as stream:
                asn = json.load(stream)
        except (OSError, ValueError) as exc:
            raise AssociationError(f"{path}: cannot read association: {exc}") from exc
        wanted = {e.lower() for e in exptypes} if exptypes is not None else None
        base = os.path.dirname(os.path.abspath(path))
        try:
            for product in asn["products"]:
                for member in product["members"]:
                    exptype = str(member.get("exptype", "science")).lower()
                    if wanted is not None and exptype not in wanted:
                        continue
                    name = member["expname"]
                    if not isinstance(name, str) or not name:
                        raise AssociationError(f"{path}: member expname {name!r} is invalid")
                    full = name if os.path.isabs(name) else os.path.join(base, name)
                    self.append(full, exptype)
        except (KeyError, TypeError) as exc:
            raise AssociationError(f"{path}: malformed association, missing {exc}") from exc
        self.asn_table = asn
        self.asn_table_name = os.path.basename(path)

    def append(self, item: DataModel | str | os.PathLike, exptype: str = "science") -> None:
        """Add a member (a model, or a path opened according to ``lazy``)."""
        if isinstance(item, os.PathLike):
            item = os.fspath(item)
        if isinstance(item, str):
            if not os.path.exists(item):
                raise DataModelError(f"{item} does not exist")
            if not self._lazy:
                item = _open(item)
        elif not isinstance(item, DataModel):
            raise DataModelError(
                f"ModelContainer members must be models or file paths, not {type(item).__name__}"
            )
        self._members.append(item)
        self.exptypes.append(exptype)

    def _materialise(self, member: Member) -> DataModel:
        return _open(member) if isinstance(member, str) else member

    @overload
    def __getitem__(self, index: int) -> DataModel: ...
    @overload
    def __getitem__(self, index: slice) -> ModelContainer: ...
    def __getitem__(self, index: int | slice) -> DataModel | ModelContainer:
        if isinstance(index, slice):
            new = ModelContainer(lazy=self._lazy)
            new._members = self._members[index]
            new.exptypes = self.exptypes[index]
            return new
        return self._materialise(self._members[index])

    def __setitem__(self, index: int, model: DataModel) -> None:
        if not isinstance(model, DataModel):
            raise DataModelError("only models can be stored in a ModelContainer")
        self._members[index] = model

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[DataModel]:
        for member in self._members:
            yield self._materialise(member)

    @property
    def paths(self) -> list[str | None]:
        """Path of each member (None for in-memory models without a source file)."""
        return [m if isinstance(m, str) else m._source_path for m in self._members]

    def get_crds_parameters(self) -> dict[str, Any]:
        """CRDS parameters of the first science member (of the first member if none)."""
        if not self._members:
            raise DataModelError("an empty ModelContainer has no CRDS parameters")
        index = self.exptypes.index("science") if "science" in self.exptypes else 0
        member = self._members[index]
        model = self._materialise(member)
        try:
            return model.get_crds_parameters()
        finally:
            if isinstance(member, str):
                model.close()

    def save(
        self,
        path: str | os.PathLike | None = None,
        save_model_func: Callable[..., str] | None = None,
    ) -> list[str]:
        """Save every member; return the paths written.

        With ``save_model_func`` each member is passed as ``save_model_func(model, idx=i)``;
        otherwise it is written as ``meta.filename`` inside directory ``path`` (default: the
        current directory).
        """
        written = []
        directory = os.fspath(path) if path is not None else "."
        for i, model in enumerate(self):
            if save_model_func is not None:
                written.append(save_model_func(model, idx=i))
                continue
            name = model.meta.filename
            if not name:
                raise DataModelError(f"member {i} has no meta.filename to save under")
            written.append(model.save(os.path.join(directory, name)))
        return written

    def close(self) -> None:
        """Close every member model held by the container."""
        for member in self._members:
            if isinstance(member, DataModel):
                member.close()

    def __enter__(self) -> ModelContainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ModelContainer of {len(self)} members>"


def _open(path: str) -> DataModel:
    from jwpipe.datamodels.opening import open_model

    return open_model(path)


def is_sequence_of_members(value: Any) -> bool:
    """True for a list/tuple whose items are all paths or models."""
    return isinstance(value, list | tuple) and all(
        isinstance(v, str | os.PathLike | DataModel) for v in value
    )


__all__ += ["is_sequence_of_members"]
