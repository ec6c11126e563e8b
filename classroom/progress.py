"""A learner's progress: what they did in the pages, where they are in a lesson, their answers to
its questions and the numbers a recap quotes. One record, kept by the server (``classroom.classes``)
under the learner's lasting token, so that a reload, a closed tab or a teacher's view finds it.

What the learner did is a count of events, each (event, detail), as the pages record them; a step
of a lesson is done when its check (``classroom.lessons.CHECKS``) finds its event among those since
the learner last started that lesson again.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace

from classroom.lessons import Step

Event = tuple[str, object]  # (event, detail or None); a detail is a str or a tuple of str (the models compared)


@dataclass(frozen=True)
class Note:
    """A number a page measured for this learner, and the model it was measured with."""
    value: float
    model: str  # the checkpoint's name


@dataclass(frozen=True)
class Place:
    """Where a learner is: a lesson and its step (from 0)."""
    lesson: str
    step: int


@dataclass(frozen=True)
class Progress:
    events: Counter = field(default_factory=Counter)  # Event -> times done
    starts: dict[str, Counter] = field(default_factory=dict)  # lesson -> ``events`` when started again
    answers: dict[tuple[str, int], tuple[int, ...]] = field(default_factory=dict)  # (lesson, step) -> options, in order
    notes: dict[str, Note] = field(default_factory=dict)
    place: Place | None = None  # the open lesson's step, or None
    left_at: dict[str, int] = field(default_factory=dict)  # lesson -> the step (from 0) the learner was last at
    followed_move: float = 0.0  # when the teacher made the class move the learner's panel last followed (0: none)

    def did(self, event: str, detail=None) -> Progress:
        return replace(self, events=self.events + Counter({(event, _frozen(detail)): 1}))

    def step_done(self, lesson: str, step: Step) -> bool:
        """Whether the learner has done what ``step`` asks since they started ``lesson`` again."""
        done = self.events - self.starts.get(lesson, Counter())
        if step.check == "new_eps":
            return done[("new_eps", None)] >= step.times
        if step.check == "compare":
            return any(event == "compare" and set(step.models) <= set(pair) for event, pair in done)
        return any(event == step.check for event, _ in done)

    def answer(self, lesson: str, step: int, option: int) -> Progress:
        chosen = self.answers.get((lesson, step), ())
        return replace(self, answers={**self.answers, (lesson, step): (*chosen, option)})

    def answers_of(self, lesson: str) -> dict[int, tuple[int, ...]]:
        """{step: the options chosen for its question, in order}: the first is the prediction."""
        return {step: chosen for (name, step), chosen in self.answers.items() if name == lesson}

    def restart(self, lesson: str) -> Progress:
        """Start ``lesson`` again: what came before ticks none of its steps, its answers are forgotten."""
        return replace(self, starts={**self.starts, lesson: Counter(self.events)},
                       answers={key: chosen for key, chosen in self.answers.items() if key[0] != lesson})

    def note(self, name: str, value: float, model: str) -> Progress:
        return replace(self, notes={**self.notes, name: Note(float(value), model)})

    def at(self, place: Place | None) -> Progress:
        """The learner at ``place`` (None: out of any lesson); each lesson keeps the step it was left
        at, to open it there again."""
        left_at = self.left_at if place is None else {**self.left_at, place.lesson: place.step}
        return replace(self, place=place, left_at=left_at)

    def followed(self, moved_at: float) -> Progress:
        """The learner's panel has followed the class move made at ``moved_at``."""
        return replace(self, followed_move=moved_at)

    def to_json(self) -> str:
        return json.dumps({
            "events": _counted(self.events),
            "starts": {lesson: _counted(events) for lesson, events in self.starts.items()},
            "answers": [[lesson, step, list(chosen)] for (lesson, step), chosen in self.answers.items()],
            "notes": {name: [note.value, note.model] for name, note in self.notes.items()},
            "place": None if self.place is None else [self.place.lesson, self.place.step],
            "left_at": self.left_at,
            "followed_move": self.followed_move,
        })

    @classmethod
    def from_json(cls, text: str) -> Progress:
        """The record ``to_json`` wrote; ValueError (or KeyError, TypeError) for one that is not."""
        raw = json.loads(text)
        place = raw["place"]
        return cls(events=_counter(raw["events"]),
                   starts={str(lesson): _counter(events) for lesson, events in raw["starts"].items()},
                   answers={(str(lesson), int(step)): tuple(int(o) for o in chosen)
                            for lesson, step, chosen in raw["answers"]},
                   notes={str(name): Note(float(value), str(model)) for name, (value, model) in raw["notes"].items()},
                   place=None if place is None else Place(str(place[0]), int(place[1])),
                   left_at={str(lesson): int(step) for lesson, step in raw["left_at"].items()},
                   followed_move=float(raw["followed_move"]))


def _frozen(detail):
    """A detail as an event's key holds it: JSON gives lists back, a key needs tuples."""
    return tuple(_frozen(d) for d in detail) if isinstance(detail, (list, tuple)) else detail


def _counted(events: Counter) -> list:
    return [[event, detail, count] for (event, detail), count in events.items() if count > 0]


def _counter(rows: list) -> Counter:
    return Counter({(str(event), _frozen(detail)): int(count) for event, detail, count in rows})
