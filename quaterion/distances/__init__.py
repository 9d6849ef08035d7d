"""Distance functions shared by losses and metrics, reachable by name through :class:`Distance`."""

from __future__ import annotations

from enum import Enum

from quaterion.distances.base_distance import BaseDistance
from quaterion.distances.cosine import Cosine
from quaterion.distances.dot_product import DotProduct
from quaterion.distances.euclidean import Euclidean
from quaterion.distances.manhattan import Manhattan


class Distance(str, Enum):
    """Names of the available distances; ``str(Distance.COSINE) == "cosine"`` on every Python."""

    EUCLIDEAN = "euclidean"
    COSINE = "cosine"
    DOT_PRODUCT = "dot_product"
    MANHATTAN = "manhattan"

    __str__ = str.__str__
    __format__ = str.__format__

    @staticmethod
    def get_by_name(name: str | Distance) -> type[BaseDistance]:
        """Return the distance class registered under ``name`` (a :class:`Distance` or its value).

        Raises:
            ValueError: ``name`` is not one of the known distances.

        Args:
            name: a ``Distance`` or its string value, e.g. ``"cosine"``.
        """
        distance = _DISTANCES.get(name)
        if distance is None:
            raise ValueError(
                f"Unrecognized distance name: {name}. Must be one of {list(_DISTANCES)}"
            )
        return distance


_DISTANCES: dict[str, type[BaseDistance]] = {
    Distance.COSINE.value: Cosine,
    Distance.EUCLIDEAN.value: Euclidean,
    Distance.MANHATTAN.value: Manhattan,
    Distance.DOT_PRODUCT.value: DotProduct,
}

__all__ = ["BaseDistance", "Cosine", "Distance", "DotProduct", "Euclidean", "Manhattan"]
