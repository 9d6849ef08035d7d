"""Distances: the reference matrices, the rowwise/matrix relation and lookup by name."""

import math

import pytest
import torch

from quaterion.distances import BaseDistance, Cosine, Distance, DotProduct, Euclidean, Manhattan

X = torch.tensor([[1.0, -1.5, 2.0, -3.0], [-1.0, 1.5, -2.0, 3.0]])
ATOL = 3e-8


def test_cosine_matrices():
    assert torch.allclose(
        Cosine.distance_matrix(X), torch.tensor([[0.0, 1.0], [1.0, 0.0]]), atol=ATOL
    )
    assert torch.allclose(
        Cosine.similarity_matrix(X), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), atol=ATOL
    )


def test_manhattan_matrices():
    assert torch.allclose(
        Manhattan.distance_matrix(X), torch.tensor([[0.0, 15.0], [15.0, 0.0]]), atol=ATOL
    )
    expected = torch.tensor([[1.0, 0.0625], [0.0625, 1.0]])
    assert torch.allclose(Manhattan.similarity_matrix(X), expected, atol=ATOL)


def test_euclidean_matrices():
    d = math.sqrt(65)  # |x0 - x1| = 2 * |x0| = 2 * sqrt(16.25)
    assert torch.allclose(
        Euclidean.distance_matrix(X), torch.tensor([[0.0, d], [d, 0.0]]), atol=1e-6
    )
    assert Euclidean.distance_matrix(X)[0, 1].item() == pytest.approx(8.0623, abs=1e-4)
    assert Euclidean.similarity_matrix(X)[0, 1].item() == pytest.approx(0.1103477, abs=1e-7)


def test_dot_product_matrices():
    expected = torch.tensor([[16.25, -16.25], [-16.25, 16.25]])
    assert torch.allclose(DotProduct.similarity_matrix(X), expected, atol=ATOL)
    assert torch.allclose(DotProduct.distance_matrix(X), -expected, atol=ATOL)


def test_cosine_rowwise_is_twice_the_matrix_scale():
    y = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    # hand-worked: cos(x0, e1) = 1 / sqrt(16.25), cos(x1, e2) = 1.5 / sqrt(16.25)
    norm = math.sqrt(16.25)
    expected_rowwise = torch.tensor([1 - 1 / norm, 1 - 1.5 / norm])
    assert torch.allclose(Cosine.distance(X, y), expected_rowwise, atol=1e-6)
    assert torch.allclose(Cosine.distance(X, y), torch.tensor([0.751931, 0.627896]), atol=1e-6)
    matrix = Cosine.distance_matrix(X, y)
    assert torch.allclose(
        matrix, torch.tensor([[0.375965, 0.686052], [0.624035, 0.313948]]), atol=1e-6
    )
    assert torch.allclose(matrix.diagonal(), Cosine.distance(X, y) / 2, atol=1e-6)
    assert torch.allclose(Cosine.similarity(X, y), 1 - Cosine.distance(X, y))


@pytest.mark.parametrize("distance", [Euclidean, Manhattan, DotProduct])
def test_rowwise_matches_matrix_diagonal(distance):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    atol = 1e-5  # pairwise_distance adds eps=1e-6 per element
    assert torch.allclose(
        distance.distance(x, y), distance.distance_matrix(x, y).diagonal(), atol=atol
    )
    assert torch.allclose(
        distance.similarity(x, y), distance.similarity_matrix(x, y).diagonal(), atol=atol
    )


def test_matrix_of_x_with_itself_by_default():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, generator=gen)
    for name in Distance:
        distance = Distance.get_by_name(name)
        assert torch.allclose(distance.distance_matrix(x), distance.distance_matrix(x, x))
        assert distance.similarity_matrix(x, torch.randn(2, 3, generator=gen)).shape == (4, 2)


def test_get_by_name_accepts_enum_and_string():
    assert Distance.get_by_name(Distance.COSINE) is Cosine
    assert Distance.get_by_name("euclidean") is Euclidean
    assert Distance.get_by_name("manhattan") is Manhattan
    assert Distance.get_by_name("dot_product") is DotProduct
    assert all(issubclass(Distance.get_by_name(name), BaseDistance) for name in Distance)


def test_get_by_name_unknown_lists_valid_names():
    with pytest.raises(ValueError) as error:
        Distance.get_by_name("hamming")
    assert str(error.value) == (
        "Unrecognized distance name: hamming. "
        "Must be one of ['cosine', 'euclidean', 'manhattan', 'dot_product']"
    )


def test_distance_enum_formats_as_value():
    assert f"{Distance.COSINE}" == "cosine"
    assert str(Distance.DOT_PRODUCT) == "dot_product"
    assert Distance.MANHATTAN == "manhattan"


def test_base_distance_is_abstract():
    with pytest.raises(NotImplementedError):
        BaseDistance.distance_matrix(X)
