"""The synthetic language's food questions and the built-in task `animal_food`."""

from __future__ import annotations

import random

from softprompt.data import synthetic


def test_every_animal_eats_one_food_of_each_menu_and_no_sentence_names_a_food():
    foods = {f for menu in synthetic.MENUS for f in menu}
    assert set(synthetic.FOODS) == set(synthetic.ANIMALS)
    for animal, eats in synthetic.FOODS.items():
        assert [eats[m] in menu for m, menu in enumerate(synthetic.MENUS)] == [True, True], animal
    # the demo's labels are balanced: every food of the first menu is eaten by two animals
    first = [eats[0] for eats in synthetic.FOODS.values()]
    assert sorted(first.count(f) for f in synthetic.MENUS[0]) == [2] * 6
    rng = random.Random(0)
    for _ in range(300):
        scene = synthetic.Scene.sample(rng)
        words = set(scene.render(rng.randrange(len(synthetic.TEMPLATES))).strip(".").split())
        assert not words & foods


def test_a_food_question_lists_exactly_one_food_the_animal_eats():
    rng = random.Random(1)
    menus_asked = set()
    for _ in range(500):
        scene = synthetic.Scene.sample(rng)
        options, target = synthetic.food_options(scene, rng)
        eats = synthetic.FOODS[scene.animal]
        assert [o for o in options if o in eats] == [target]
        assert 2 <= len(options) == len(set(options)) <= 6
        assert set(options) != set(synthetic.MENUS[0])   # the demo's option list is never drawn
        menus_asked.add(eats.index(target))
    assert menus_asked == {0, 1}
    inputs, target = synthetic.skill_pair("food", "what does the animal eat?", scene,
                                          "the red fox saw two cups near the lake.", rng)
    assert inputs.startswith("what does the animal eat? options: ")
    assert inputs.endswith(". the red fox saw two cups near the lake.") and target in eats


def test_the_demo_asks_for_the_first_menu_and_the_pretraining_never_uses_its_wording():
    demo = synthetic.demo_examples(seed=0)
    for row in demo["train"][:50] + demo["validation"]:
        animal = next(a for a in synthetic.ANIMALS if f" {a} " in f" {row['sentence']}")
        assert row["food"] == synthetic.FOODS[animal][0]
    _, pairs = synthetic.pretraining_texts(0, 3000, seed=0)
    food = [p for p in pairs if p["skill"] == "food"]
    assert len(food) == 600          # asked twice as often as each of the eight other skills
    held_out = synthetic.HELD_OUT["food"][0]
    assert not any(held_out in p["inputs"] for p in pairs)
    assert synthetic.DEMO["instruction"] == f"{held_out} options: meat fish seeds grass nuts bugs."
