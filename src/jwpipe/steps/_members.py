"""Members of a stage-3 product: opening, checking and streaming them one at a time.

* :func:`load_members` turns an association, a list of files, a single file or a model into
  a lazy :class:`~jwpipe.datamodels.ModelContainer` of the science members, and
  :func:`check_members` checks that they belong together (headers only).
* :class:`Workspace` / :func:`map_members`: member-to-member steps write each modified member
  to a temporary file and return a container of those paths, so N members never sit in
  memory at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jwpipe.errors import AssociationError, DataModelError, StepInputError
from jwpipe.steps._image_common import label, model_wcs

if TYPE_CHECKING:
    from jwpipe.datamodels import ModelContainer

__all__ = [
    "Workspace",
    "check_members",
    "group_ids",
    "load_members",
    "map_members",
    "member_wcs_list",
    "open_member",
    "product_name",
    "workspace_dir",
]


def load_members(input: Any, step: str) -> ModelContainer:
    """The science members of a stage-3 input as a lazy container.

    Parameters
    ----------
    input : str, os.PathLike, list, ModelContainer or DataModel
        An association ``.json`` (science members of its products), a FITS file, a list of
        files/models, a container or a model.
    step : str
        Step name for messages.

    Raises
    ------
    AssociationError
        The association has no science members, or member files are missing.
    """
    from jwpipe.datamodels import DataModel, ModelContainer

    if isinstance(input, ModelContainer):
        container = input
    elif isinstance(input, DataModel):
        container = ModelContainer([input])
    elif isinstance(input, str | os.PathLike):
        path = os.fspath(input)
        if path.lower().endswith(".json"):
            from jwpipe.associations import load_asn

            asn = load_asn(path)
            missing = asn.missing_members()
            if missing:
                raise AssociationError(
                    f"{path}: member file(s) not found: "
                    + ", ".join(str(p) for p in missing[:5])
                    + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
            container = ModelContainer(path, exptypes=["science"])
        else:
            container = ModelContainer([path])
    elif isinstance(input, list | tuple):
        try:
            container = ModelContainer(list(input))
        except DataModelError as exc:
            raise AssociationError(f"{step}: {exc}") from None
    else:
        raise StepInputError(f"{step}: cannot use a {type(input).__name__} as input")
    if len(container) == 0:
        raise AssociationError(f"{step}: the input has no science members")
    return container


def product_name(container: ModelContainer, default: str | None = None) -> str | None:
    """The file-name root of ``products[0].name`` of the container's association (jwst's
    template fields filled, see :func:`jwpipe.associations.product_root`), else ``default``."""
    asn = container.asn_table
    if asn:
        try:
            name = str(asn["products"][0]["name"])
        except (KeyError, IndexError, TypeError):
            return default
        from jwpipe.associations import product_root

        return product_root(name)
    return default


def _observation_group(model: Any) -> str:
    obs = model.meta.observation
    parts = [obs.program_number, obs.observation_number, obs.visit_number,
             obs.visit_group, obs.sequence_id, obs.activity_id, obs.exposure_number]
    if all(p is None for p in parts):
        return label(model)
    return "jw{}{}{}_{}{}{}_{}".format(*["" if p is None else p for p in parts])


def group_ids(container: ModelContainer) -> list[str]:
    """Exposure group of each member: the association's ``group_id``, else from the headers.

    Members of one exposure (several detectors) share a group and are aligned as one unit.
    """
    explicit: list[str | None] = []
    asn = container.asn_table
    if asn:
        for product in asn.get("products", []):
            for member in product.get("members", []):
                if str(member.get("exptype", "science")).lower() == "science":
                    explicit.append(member.get("group_id"))
    if len(explicit) != len(container):
        explicit = [None] * len(container)
    out = []
    for i, gid in enumerate(explicit):
        if gid:
            out.append(str(gid))
            continue
        # headers only: arrays are read lazily, and the file closes when the model is freed
        out.append(_observation_group(container[i]))
    return out


def open_member(container: ModelContainer, index: int) -> Any:
    """Member ``index`` as a model this step may modify (a copy if the caller holds it).

    A lazy (path) member is opened fresh from its file; a model the caller put in the
    container is copied, so a step never changes the caller's objects.
    """
    model = container[index]
    # a path member is opened afresh on every access; a model member is the caller's object
    if not isinstance(container._members[index], str):
        return model.copy()
    return model


def check_members(container: ModelContainer, step: str, wcs: bool = False) -> Any:
    """Raise unless every member is a 2-D image of one instrument and filter.

    Headers only are read (one member at a time).

    Returns
    -------
    list of (ny, nx)
        The shape of each member; with ``wcs=True`` a tuple ``(shapes, wcs_list)``.
    """
    from jwpipe.datamodels import ImageModel
    from jwpipe.steps._common import check_produced_arrays

    keys: tuple[Any, ...] | None = None
    first = ""
    shapes: list[tuple[int, int]] = []
    wcss: list[Any] = []
    for i in range(len(container)):
        model = container[i]  # headers only; arrays are not read
        if not isinstance(model, ImageModel):
            raise StepInputError(
                f"{step}: member {label(model)} is a {type(model).__name__}; stage 3 "
                "needs 2-D calibrated images (ImageModel, _cal files)")
        inst = model.meta.instrument
        these = (inst.name, inst.filter, inst.pupil)
        if keys is None:
            keys, first = these, label(model)
        elif these != keys:
            raise StepInputError(
                f"{step}: member {label(model)} has INSTRUME/FILTER/PUPIL "
                f"{'/'.join(map(str, these))} but {first} has "
                f"{'/'.join(map(str, keys))}; one product must combine one instrument "
                "and filter")
        shape = model.shape
        if shape is None or len(shape) != 2:
            raise StepInputError(f"{step}: member {label(model)} has no 2-D SCI array")
        check_produced_arrays(model, step)
        shapes.append((int(shape[0]), int(shape[1])))
        if wcs:
            wcss.append(model_wcs(model, step))
    return (shapes, wcss) if wcs else shapes


class Workspace:
    """A temporary directory for the members a step writes (removed with the container).

    Parameters
    ----------
    directory : str or None
        Where to create it (the step's ``output_dir``); None: the system temporary directory.
    tag : str
        Step name, part of the directory name.
    """

    def __init__(self, directory: str | None, tag: str) -> None:
        if directory:
            os.makedirs(directory, exist_ok=True)
        self.path = tempfile.mkdtemp(prefix=f".jwpipe_{tag}_", dir=directory or None)
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.path, True)

    def store(self, model: Any, index: int, name: str | None = None) -> str:
        """Save ``model`` under its own file name in a per-member sub-directory."""
        base = os.path.basename(name or getattr(model.meta, "filename", None)
                                or f"member{index:05d}.fits")
        sub = os.path.join(self.path, f"{index:05d}")
        os.makedirs(sub, exist_ok=True)
        return model.save(os.path.join(sub, base))

    def container(self, paths: list[str], like: ModelContainer) -> ModelContainer:
        """A lazy container of ``paths`` that keeps this workspace alive."""
        from jwpipe.datamodels import ModelContainer

        out = ModelContainer(paths)
        out.exptypes = list(like.exptypes)
        out.asn_table = like.asn_table
        out.asn_table_name = like.asn_table_name
        out._jwpipe_workspace = self  # type: ignore[attr-defined]
        return out


def workspace_dir(step: Any) -> str | None:
    """Directory for a step's temporary members: its output_dir, else the system default."""
    out = step.search_attr("output_dir")
    return os.path.expanduser(out) if out else None


def map_members(step: Any, container: ModelContainer,
                func: Callable[[int, Any], None]) -> ModelContainer:
    """Apply ``func(index, model)`` to every member, one at a time; return the new container.

    Each modified member is written to a temporary file (see :class:`Workspace`), so memory
    holds one member at a time whatever the number of members.
    """
    ws = Workspace(workspace_dir(step), step.name)
    paths = []
    for i in range(len(container)):
        model = open_member(container, i)
        try:
            func(i, model)
            paths.append(ws.store(model, i))
        finally:
            model.close()
    return ws.container(paths, container)


def member_wcs_list(container: ModelContainer, step: str) -> list[Any]:
    """The WCS of every member (read from the headers only)."""
    return [model_wcs(container[i], step) for i in range(len(container))]
