"""The embedded image task: count the shapes of one colour in a small rendered grid.

An image is a `grid` x `grid` board of `cell`-pixel cells; each cell is empty or holds a
red, green or blue square or disc. The question names a colour ("How many red shapes?")
and the answer is the count. A solution goes through the cells in reading order, writing
1 for a shape of the asked colour and 0 otherwise, then boxes the sum:

    1+0+0+1=2 \\boxed{2}

With `cell` equal to the model's patch size every cell is exactly one image token, so the
tiny model has to tell one patch's colour per term, and the written terms make its mistakes
visible to a judge, as the column sums do in the text task.

The warm-start teacher miscounts each cell with probability `slip` (and then adds up what it
wrote), so greedy accuracy stays well below 100% and sampled groups are mixed.

Train and test partition the problem space (board and asked colour) by a hash, as in
`sparkrl.tiny.task`, so no test problem is ever generated for training, whatever the seeds.
Datasets are written as PNG files plus JSONL rows (`question`, `answer`, `images` relative to
the JSONL file), the format `sparkrl.data.load_examples` reads.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from sparkrl.checks import is_probability
from sparkrl.rows import Example

SPLITS = ("train", "test")
COLOURS = {"red": (215, 40, 40), "green": (30, 160, 60), "blue": (40, 80, 220)}
SHAPES = ("square", "disc")
Cell = tuple[str, str] | None  # (colour, shape), or None for an empty cell


@dataclass(frozen=True)
class ShapeTaskConfig:
    """The board and the imperfection of the warm-start teacher.

    grid: cells per side (2-4). cell: pixels per cell side (use the model's patch size).
    slip: probability that the teacher miscounts a cell. test_fraction: share of the
    problem space kept for the test split. judge_slip: the teacher of judge replies is a
    careless checker that also counts each shape of another colour with this probability
    (`careless_tally`), and judge verdicts follow its count (`sparkrl.tiny_vl.warmstart`).
    """

    grid: int = 2
    cell: int = 14
    slip: float = 0.15
    test_fraction: float = 0.1
    judge_slip: float = 0.6

    def __post_init__(self) -> None:
        if not 2 <= self.grid <= 4:
            raise ValueError(f"ShapeTaskConfig.grid must be 2-4, got {self.grid}")
        if self.cell < 6:
            raise ValueError(f"ShapeTaskConfig.cell must be >= 6 pixels, got {self.cell}")
        for name in ("slip", "judge_slip"):
            value = getattr(self, name)
            if not is_probability(value):
                raise ValueError(f"ShapeTaskConfig.{name} must be a number in [0, 1], got {value!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"ShapeTaskConfig.test_fraction must be in (0, 1), got {self.test_fraction}")

    @property
    def image_size(self) -> int:
        return self.grid * self.cell


@dataclass(frozen=True)
class ShapeProblem:
    """One board (cells in reading order) and the colour asked about."""

    cells: tuple[Cell, ...]
    colour: str

    def __post_init__(self) -> None:
        if self.colour not in COLOURS:
            raise ValueError(f"ShapeProblem.colour must be one of {sorted(COLOURS)}, got {self.colour!r}")
        side = round(len(self.cells) ** 0.5)
        if side * side != len(self.cells) or side < 2:
            raise ValueError(f"ShapeProblem needs a square board of at least 2x2 cells, got {len(self.cells)} cells")
        for cell in self.cells:
            if cell is not None and (cell[0] not in COLOURS or cell[1] not in SHAPES):
                raise ValueError(f"ShapeProblem cell {cell!r} is not a (colour, shape) pair")

    @property
    def question(self) -> str:
        return f"How many {self.colour} shapes?"

    @property
    def marks(self) -> tuple[int, ...]:
        """The honest per-cell terms: 1 where a shape has the asked colour."""
        return tuple(int(cell is not None and cell[0] == self.colour) for cell in self.cells)

    @property
    def answer(self) -> str:
        return str(sum(self.marks))

    def key(self) -> str:
        cells = ",".join("." if c is None else f"{c[0][0]}{c[1][0]}" for c in self.cells)
        return f"{cells}?{self.colour}"


def render(problem: ShapeProblem, cell: int) -> Image.Image:
    """The board as an RGB image on a white background."""
    side = round(len(problem.cells) ** 0.5)
    image = Image.new("RGB", (side * cell, side * cell), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    margin = max(1, cell // 7)
    for index, content in enumerate(problem.cells):
        if content is None:
            continue
        row, column = divmod(index, side)
        box = (column * cell + margin, row * cell + margin, (column + 1) * cell - margin - 1, (row + 1) * cell - margin - 1)
        colour, shape = content
        (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=COLOURS[colour])
    return image


def split_of(problem: ShapeProblem, test_fraction: float) -> str:
    bucket = int.from_bytes(hashlib.sha256(problem.key().encode()).digest()[:8], "big") / 2**64
    return "test" if bucket < test_fraction else "train"


def split_capacity(config: ShapeTaskConfig, split: str) -> int:
    """Distinct problems of `split` that may be requested: half its expected size."""
    space = (1 + len(COLOURS) * len(SHAPES)) ** (config.grid**2) * len(COLOURS)
    share = config.test_fraction if split == "test" else 1.0 - config.test_fraction
    return int(space * share / 2)


def random_problem(config: ShapeTaskConfig, rng: random.Random) -> ShapeProblem:
    contents: list[Cell] = [None, *((c, s) for c in COLOURS for s in SHAPES)]
    cells = tuple(rng.choice(contents) for _ in range(config.grid**2))
    return ShapeProblem(cells, rng.choice(sorted(COLOURS)))


def generate_problems(config: ShapeTaskConfig, split: str, n: int, seed: int) -> list[ShapeProblem]:
    """`n` distinct problems of `split`, reproducible from `seed`."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n > split_capacity(config, split):
        raise ValueError(f"{n} {split} problems requested but at most {split_capacity(config, split)} can be drawn; raise grid")
    rng = random.Random(f"tiny-vl-task/{split}/{seed}")
    seen: set[str] = set()
    problems = []
    while len(problems) < n:
        problem = random_problem(config, rng)
        if problem.key() in seen or split_of(problem, config.test_fraction) != split:
            continue
        seen.add(problem.key())
        problems.append(problem)
    return problems


def solution(marks: tuple[int, ...]) -> str:
    return "+".join(str(m) for m in marks) + f"={sum(marks)} \\boxed{{{sum(marks)}}}"


def correct_solution(problem: ShapeProblem) -> str:
    return solution(problem.marks)


def teacher_solution(problem: ShapeProblem, rng: random.Random, slip: float) -> str:
    """The warm-start teacher: each cell's term flipped with probability `slip`, then summed."""
    return solution(tuple(1 - m if rng.random() < slip else m for m in problem.marks))


def tally(marks: tuple[int, ...]) -> str:
    """A judge's count of the cells, written as a tally (`xoox=2 \\boxed{2}`: `x` a cell counted,
    `o` one not), not in the policy's `1+0+0+1` notation. A judge that counted in the policy's
    own notation was taught to count by plain GRPO's policy training as well (its pairwise judge
    77.2% on one seed of three); with its own notation it stays near chance
    (experiments/notes/digit-demo-2026-12.md, runs 26-27)."""
    return "".join("x" if m else "o" for m in marks) + f"={sum(marks)} \\boxed{{{sum(marks)}}}"


def careless_tally(problem: ShapeProblem, rng: random.Random, share: float) -> str:
    """A careless checker's tally: right for the asked colour and for empty cells, but each
    shape of another colour counted as well with probability `share` (it looks at shapes, not
    at their colour)."""
    return tally(tuple(1 if cell is not None and cell[0] != problem.colour and rng.random() < share else mark
                       for cell, mark in zip(problem.cells, problem.marks)))


def wrong_solution(problem: ShapeProblem, rng: random.Random) -> str:
    """A consistent solution with a wrong total: exactly one cell miscounted."""
    marks = list(problem.marks)
    index = rng.randrange(len(marks))
    marks[index] = 1 - marks[index]
    return solution(tuple(marks))


def write_dataset(config: ShapeTaskConfig, split: str, n: int, seed: int, folder: str | Path) -> Path:
    """Render `n` problems of `split` to `folder/images/*.png` and write `folder/<split>.jsonl`.

    Image paths in the rows are relative to the JSONL file, so the folder can be moved.
    """
    from sparkrl.data import examples_to_jsonl

    root = Path(folder)
    (root / "images").mkdir(parents=True, exist_ok=True)
    examples = []
    for index, problem in enumerate(generate_problems(config, split, n, seed)):
        relative = f"images/{split}-{seed}-{index:05d}.png"
        render(problem, config.cell).save(root / relative)
        source = {"task": "tiny-shapes", "split": split, "board": problem.key()}
        examples.append(Example(problem.question, problem.answer, images=(relative,), source=source))
    path = root / f"{split}.jsonl"
    examples_to_jsonl(examples, path)
    return path
