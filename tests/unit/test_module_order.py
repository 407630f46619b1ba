"""--module-order (tests/conftest.py): the order check `make test` runs the real-component layers with."""

import pytest

from tests.conftest import module_ranks

PATHS = ["a.py", "a.py", "b.py", "c.py", "c.py", "d.py"]


def test_file_order_keeps_the_collected_order_and_reverse_turns_it_round():
    assert module_ranks("file", PATHS) == {"a.py": 0, "b.py": 1, "c.py": 2, "d.py": 3}
    assert module_ranks("reverse", PATHS) == {"d.py": 0, "c.py": 1, "b.py": 2, "a.py": 3}


def test_a_seed_repeats_its_shuffle_and_every_module_keeps_one_place():
    one, two = module_ranks("random:7", PATHS), module_ranks("random:7", PATHS)
    assert one == two and sorted(one.values()) == [0, 1, 2, 3] and set(one) == set(PATHS)
    orders = {tuple(sorted(module_ranks(f"random:{s}", PATHS), key=module_ranks(f"random:{s}", PATHS).get))
              for s in range(20)}
    assert len(orders) > 1  # different seeds give different orders


@pytest.mark.parametrize("bad", ["backwards", "random:", "random:x1", ""])
def test_anything_else_is_refused_with_the_choices(bad):
    with pytest.raises(pytest.UsageError, match="file, reverse or random:SEED"):
        module_ranks(bad, PATHS)
