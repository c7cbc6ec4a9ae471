"""A small synthetic language, its pretraining mixture and the built-in demo task.

Everything the embedded model ``softprompt_tiny`` learned comes from here: no
outside text, no download. The generator is deterministic (seeded
``random.Random``), so ``scripts/build_embedded.py`` rebuilds the same files.

The language: one-sentence scenes with an animal of one colour, a number of
objects of another colour, and a place, in several word orders::

    the red fox found three blue boxes near the river.
    near the barn, a white goat watched seven green cups.
    five pink keys were carried by the black owl at the lake.

Each animal eats two foods, one from each of two menus (`FOODS`, `MENUS`);
no food word ever occurs in a sentence.

Pretraining mixture (see `pretraining_files`):

- ``lm.txt``: text for the prefix-LM objective (lines of one or two sentences);
- ``tasks.jsonl``: instruction tasks ``{"inputs": "<question> <sentence>",
  "targets": "<answer>"}`` for nine skills (`SKILLS`), each asked in three
  phrasings: the animal, its colour, the objects, their colour, how many,
  the place, whether the number is even, whether it is more than six, and
  (twice as often as the others) what the animal eats, a multiple-choice
  question whose options name one of its two foods and 1-5 foods it does not
  eat: ``"what does the animal eat? options: hay fish meat. <sentence>"`` ->
  ``meat`` (`skill_pair`).

The built-in task (`DEMO`, files ``softprompt/data/animal_food/``): the input
is a bare sentence and the target the animal's food from the first menu (6
labels, chance 16.7 %). The frozen model never saw this format (pretraining
questions always come in front of the sentence; a bare sentence was only ever
text to continue); the demo's instruction, ``"tell me what the animal eats.
options: meat fish seeds grass nuts bugs."``, uses a phrasing that pretraining
never used (`HELD_OUT`) and an option list it never drew (the whole first
menu). No demo sentence occurs in the pretraining files. Without the options
the model cannot know which of the animal's two foods is asked: a soft prompt
has to learn, from examples, to stand for the question and the six options.

The comparison task (`COLOR_FOOD`, files ``softprompt/data/color_food/``):
the input is again a bare sentence, the target what the animal eats from the
menu its colour selects: red, blue, green and yellow animals from the first
menu, black, white, brown and pink ones from the second (12 labels, chance
8.3 %). The instruction can list the twelve foods but has no words the model
knows for the rule, so it answers one of the animal's two foods (~50 %); a
tuned prompt or model has to learn the rule from examples, and the rule needs
the colour *of the animal* — every sentence has two colours, and binding a
colour to its noun is the small model's weakest skill. None of its sentences
occurs in the pretraining text.

Example:
    >>> rng = random.Random(0)
    >>> scene = Scene.sample(rng)
    >>> sentence = scene.render(0)
    >>> answer("animal_color", scene) in COLORS
    True
    >>> answer("food", scene) in MENUS[0]
    True
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator
from pathlib import Path

ANIMALS = ("fox", "dog", "cat", "bird", "horse", "rabbit", "bear", "frog", "duck", "goat",
           "mouse", "owl")
COLORS = ("red", "blue", "green", "yellow", "black", "white", "brown", "pink")
OBJECTS = {"box": "boxes", "ball": "balls", "cup": "cups", "hat": "hats", "book": "books",
           "key": "keys", "stone": "stones", "shoe": "shoes"}
NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve")
PLACES = ("river", "house", "tree", "hill", "road", "garden", "lake", "barn")
VERBS = {"saw": "seen", "found": "found", "carried": "carried", "watched": "watched",
         "chased": "chased", "hid": "hidden"}

#: Word orders of a scene sentence; ``{objs}`` agrees with the number.
TEMPLATES = (
    "the {c1} {animal} {verb} {n} {c2} {objs} near the {place}.",
    "near the {place}, a {c1} {animal} {verb} {n} {c2} {objs}.",
    "{n} {c2} {objs} were {pp} by the {c1} {animal} at the {place}.",
    "at the {place} there was a {c1} {animal} with {n} {c2} {objs}.",
    "a {c1} {animal} and {n} {c2} {objs} were by the {place}.",
)

#: What each animal eats: one food of each menu (`MENUS`). A food question lists options,
#: exactly one of which the animal eats, so the answer depends on the options given.
FOODS = {
    "fox": ("meat", "corn"), "dog": ("meat", "bread"), "cat": ("fish", "cheese"),
    "bird": ("seeds", "berries"), "horse": ("grass", "hay"), "rabbit": ("nuts", "hay"),
    "bear": ("fish", "berries"), "frog": ("bugs", "leaves"), "duck": ("seeds", "bread"),
    "goat": ("grass", "corn"), "mouse": ("nuts", "cheese"), "owl": ("bugs", "leaves"),
}
#: The two menus: every animal eats exactly one food of each (the demo asks about the first).
MENUS = (("meat", "fish", "seeds", "grass", "nuts", "bugs"),
         ("bread", "cheese", "berries", "hay", "corn", "leaves"))

#: Skill -> the question phrasings used in pretraining.
SKILLS = {
    "animal": ("which animal is it?", "what animal is mentioned?", "tell me the animal."),
    "animal_color": ("what color is the animal?", "which color is the animal?",
                     "the animal has which color?"),
    "objects": ("what are the objects?", "which things are mentioned?", "tell me the objects."),
    "object_color": ("what color are the objects?", "which color are the things?",
                     "tell me the color of the objects."),
    "count": ("how many objects are there?", "what is the number of things?",
              "tell me how many."),
    "place": ("where is it?", "which place is mentioned?", "tell me the place."),
    "even": ("is the number even?", "is the count even?", "is it an even number?"),
    "more_than_six": ("are there more than six?", "is the number more than six?",
                      "is the count above six?"),
    "food": ("what does the animal eat?", "which food does the animal eat?",
             "the animal eats which food?"),
}
#: Phrasings kept out of pretraining (the demo's instruction is the first).
HELD_OUT = {"animal_color": ("tell me the color of the animal.",),
            "food": ("tell me what the animal eats.",)}


@dataclasses.dataclass(frozen=True)
class Scene:
    """One sampled scene: an animal of colour `c1`, `count` objects of colour `c2`, a place."""

    animal: str
    c1: str
    obj: str
    c2: str
    count: int
    place: str
    verb: str

    @classmethod
    def sample(cls, rng: random.Random) -> Scene:
        c1, c2 = rng.sample(COLORS, 2)
        return cls(rng.choice(ANIMALS), c1, rng.choice(sorted(OBJECTS)), c2,
                   rng.randint(1, len(NUMBERS)), rng.choice(PLACES), rng.choice(sorted(VERBS)))

    def render(self, template: int) -> str:
        objs = self.obj if self.count == 1 else OBJECTS[self.obj]
        text = TEMPLATES[template].format(
            c1=self.c1, animal=self.animal, verb=self.verb, pp=VERBS[self.verb],
            n=NUMBERS[self.count - 1], c2=self.c2, objs=objs, place=self.place,
        )
        if self.count == 1:
            text = text.replace(" were ", " was ")
        return text


def answer(skill: str, scene: Scene) -> str:
    """The answer of `skill`'s question about `scene`."""
    if skill == "animal":
        return scene.animal
    if skill == "animal_color":
        return scene.c1
    if skill == "objects":
        return OBJECTS[scene.obj] if scene.count > 1 else scene.obj
    if skill == "object_color":
        return scene.c2
    if skill == "count":
        return NUMBERS[scene.count - 1]
    if skill == "place":
        return scene.place
    if skill == "even":
        return "yes" if scene.count % 2 == 0 else "no"
    if skill == "more_than_six":
        return "yes" if scene.count > 6 else "no"
    if skill == "food":
        return FOODS[scene.animal][0]
    raise ValueError(f"unknown skill {skill!r}: expected one of {', '.join(SKILLS)}")


def food_options(scene: Scene, rng: random.Random) -> tuple[list[str], str]:
    """Options for a food question about `scene`, and the answer (the one the animal eats).

    One of the animal's two foods (a random menu) and 1-5 foods it does not eat,
    shuffled. The demo's option list (all of the first menu) is never drawn.
    """
    eats = FOODS[scene.animal]
    answer_ = eats[rng.randrange(len(MENUS))]
    others = sorted({f for menu in MENUS for f in menu} - set(eats))
    while True:
        options = [answer_, *rng.sample(others, rng.randint(1, 5))]
        rng.shuffle(options)
        if set(options) != set(MENUS[0]):
            return options, answer_


def skill_pair(skill: str, question: str, scene: Scene, sentence: str,
               rng: random.Random) -> tuple[str, str]:
    """A pretraining pair ``(inputs, target)``: `question` about `sentence`.

    A food question lists its options between the question and the sentence:
    ``"what does the animal eat? options: hay fish meat. the red fox ..."`` -> ``meat``.
    """
    if skill == "food":
        options, target = food_options(scene, rng)
        return f"{question} options: {' '.join(options)}. {sentence}", target
    return f"{question} {sentence}", answer(skill, scene)


def _sentences(rng: random.Random, templates=None) -> Iterator[tuple[Scene, str]]:
    """Scenes and their sentences, each in one of `templates` (default: all) at random."""
    while True:
        scene = Scene.sample(rng)
        template = (rng.randrange(len(TEMPLATES)) if templates is None
                    else rng.choice(templates))
        yield scene, scene.render(template)


# ---------------------------------------------------------------------- the demo task

#: The built-in task: what `softprompt train` with no arguments runs.
DEMO = {
    "name": "animal_food",
    "template": "{sentence}",
    "target_field": "food",
    "labels": list(MENUS[0]),
    "instruction": f"{HELD_OUT['food'][0]} options: {' '.join(MENUS[0])}.",
    "sizes": {"train": 800, "validation": 200},
}


#: The comparison task: the menu the animal's colour selects (see the module's docs).
COLOR_FOOD = {
    "name": "color_food",
    "template": "{sentence}",
    "target_field": "food",
    "labels": list(MENUS[0] + MENUS[1]),
    "instruction": f"{HELD_OUT['food'][0]} options: {' '.join(MENUS[0] + MENUS[1])}.",
    "sizes": {"train": 4000, "validation": 500},
}
#: Animal colours that select the first menu in `COLOR_FOOD` (the others select the second).
FIRST_MENU_COLORS = COLORS[:4]


def color_food(scene: Scene) -> str:
    """`COLOR_FOOD`'s answer: the animal's food from the menu its colour selects."""
    return FOODS[scene.animal][0 if scene.c1 in FIRST_MENU_COLORS else 1]


#: `COLOR_FOOD` under a shift of word order, for ``softprompt transfer``: training and its
#: dev set use the active-voice templates, the shifted set only the other three.
DOMAINS = {"active": (0, 1), "shifted": (2, 3, 4)}


def demo_examples(seed: int = 0) -> dict[str, list[dict]]:
    """The demo task's splits: ``{"train": [...], "validation": [...]}``, distinct sentences."""
    return _task_examples(DEMO, lambda scene: answer("food", scene), f"demo-{seed}")


def color_food_examples(seed: int = 0) -> dict[str, list[dict]]:
    """`COLOR_FOOD`'s splits; no sentence of the demo or the pretraining text occurs in them."""
    demo = {row["sentence"] for rows in demo_examples(seed).values() for row in rows}
    used: set[str] = set()
    pretraining_texts(LM_LINES, TASK_PAIRS, seed, exclude=demo, used=used)
    return _task_examples(COLOR_FOOD, color_food, f"{COLOR_FOOD['name']}-{seed}",
                          exclude=demo | used)


def color_food_domains(seed: int = 0) -> dict[str, dict[str, list[dict]]]:
    """`COLOR_FOOD` in two domains (`DOMAINS`): ``{"active": {"train", "validation"},
    "shifted": {"validation"}}``; no sentence of the other files or the pretraining text."""
    taken = {row["sentence"] for rows in color_food_examples(seed).values() for row in rows}
    demo = {row["sentence"] for rows in demo_examples(seed).values() for row in rows}
    used: set[str] = set()
    pretraining_texts(LM_LINES, TASK_PAIRS, seed, exclude=demo, used=used)
    exclude = taken | demo | used
    name = COLOR_FOOD["name"]
    active = _task_examples(COLOR_FOOD, color_food, f"{name}-active-{seed}", exclude,
                            DOMAINS["active"])
    exclude |= {row["sentence"] for rows in active.values() for row in rows}
    shifted = _task_examples(COLOR_FOOD, color_food, f"{name}-shifted-{seed}", exclude,
                             DOMAINS["shifted"], {"validation": COLOR_FOOD["sizes"]["validation"]})
    return {"active": active, "shifted": shifted}


def _task_examples(spec: dict, target, rng_name: str, exclude: set[str] = frozenset(),
                   templates=None, sizes=None) -> dict[str, list[dict]]:
    rng = random.Random(rng_name)
    seen = set(exclude)
    out: dict[str, list[dict]] = {}
    source = _sentences(rng, templates)
    for split, size in (sizes or spec["sizes"]).items():
        rows = []
        while len(rows) < size:
            scene, sentence = next(source)
            if sentence in seen:
                continue
            seen.add(sentence)
            rows.append({"sentence": sentence, spec["target_field"]: target(scene)})
        out[split] = rows
    return out


# ---------------------------------------------------------------------- pretraining


#: The pretraining mixture's size (``lm.txt`` lines, ``tasks.jsonl`` pairs).
LM_LINES = 20000
TASK_PAIRS = 40000


def pretraining_texts(lm_lines: int, task_pairs: int, seed: int = 0,
                      exclude: set[str] = frozenset(),
                      used: set[str] | None = None) -> tuple[list[str], list[dict]]:
    """``(lm_lines, task_pairs)``: prefix-LM text and instruction pairs.

    Sentences in `exclude` (the demo's) are never used; every sentence used is
    added to `used` when given. Skills are asked equally often, each in one of
    its pretraining phrasings at random.
    """
    rng = random.Random(f"pretrain-{seed}")
    source = ((sc, s) for sc, s in _sentences(rng) if s not in exclude)
    if used is not None:
        source = (used.add(s) or (sc, s) for sc, s in source)
    lines = []
    for _ in range(lm_lines):
        lines.append(" ".join(next(source)[1] for _ in range(rng.choice((1, 1, 2)))))
    skills = sorted(SKILLS) + ["food"]     # the food look-up is asked twice as often
    pairs = []
    for i in range(task_pairs):
        skill = skills[i % len(skills)]
        scene, sentence = next(source)
        inputs, target = skill_pair(skill, rng.choice(SKILLS[skill]), scene, sentence, rng)
        pairs.append({"inputs": inputs, "targets": target, "skill": skill})
    return lines, pairs


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")
    return path


def write_demo(out_dir: str | Path, seed: int = 0) -> Path:
    """Write the demo task's ``train.jsonl`` and ``validation.jsonl`` into `out_dir`."""
    return _write_splits(out_dir, demo_examples(seed))


def write_color_food(out_dir: str | Path, seed: int = 0) -> Path:
    """Write `COLOR_FOOD`'s ``train.jsonl`` and ``validation.jsonl`` into `out_dir`, and its
    two domains (`color_food_domains`) into ``out_dir/../color_food_active`` and
    ``out_dir/../color_food_shifted``."""
    out_dir = Path(out_dir)
    for domain, splits in color_food_domains(seed).items():
        _write_splits(out_dir.parent / f"{out_dir.name}_{domain}", splits)
    return _write_splits(out_dir, color_food_examples(seed))


def _write_splits(out_dir, splits: dict[str, list[dict]]) -> Path:
    out_dir = Path(out_dir)
    for split, rows in splits.items():
        write_jsonl(out_dir / f"{split}.jsonl", rows)
    return out_dir


def pretraining_files(out_dir: str | Path, lm_lines: int = LM_LINES, task_pairs: int = TASK_PAIRS,
                      seed: int = 0) -> list[Path]:
    """Write ``lm.txt`` and ``tasks.jsonl`` (the pretraining mixture) into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    demo = {row["sentence"] for rows in demo_examples(seed).values() for row in rows}
    lines, pairs = pretraining_texts(lm_lines, task_pairs, seed, exclude=demo)
    lm = out_dir / "lm.txt"
    lm.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [lm, write_jsonl(out_dir / "tasks.jsonl", pairs)]
