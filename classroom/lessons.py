"""Lessons: guided paths through the app, as data. Each lesson is one TOML file under ``lessons/``:
a title, a summary and its steps, each step a title, two or three sentences, the page where it
happens and a completion check from a fixed set the app detects from what the learner did (see
``CHECKS``); a step may also ask a question to answer before its task (``question``, 2 to 4
``options``, the right one's number ``answer`` counted from 1, and a line of ``feedback`` per
option saying why it is right or wrong): predicting first is what makes the task teach. Read with
the standard library's TOML parser; a file that does not parse, names an unknown page or check, or
asks a malformed question, is reported with its reason and left out, so the other lessons work.

    python -m classroom.lessons            # the lessons in lessons/, or why a file was left out
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from classroom.pages import PAGES

LESSON_DIR = Path(__file__).resolve().parent.parent / "lessons"
# What the app can see a learner do: each check's name and the options it takes.
CHECKS = {
    "drawing": "a digit has been drawn (or uploaded) on Draw",
    "new_eps": "another ε drawn on Inside, `times` times (default 1)",
    "posterior_z": "z moved on Inside's posterior plane (a click or the number inputs)",
    "collapsed_dimension": "a collapsed dimension (KL ≈ 0) chosen on Inside",
    "map_click": "a test digit clicked on the Latent map",
    "interpolation": "an interpolation between two different test digits on Generate",
    "compare": "the two models named in `models` side by side on Compare, given an input or seed the learner chose",
    "film_epoch_one": "the training film opened at a frame inside epoch 1 (before epoch 1 ends)",
    "beta": "a model with beta other than 1 beside another on Compare, given an input or seed the learner chose, "
            "or a run with beta other than 1 queued",
    "mixture_samples": "new samples drawn from the mixture on Generate (New seed, or a seed typed)",
    "run": "a run queued, or a run of the class chosen in the table and watched live on Train",
}
OPTIONS = {"new_eps": {"times"}, "compare": {"models"}}
QUESTION_FIELDS = ("question", "options", "answer", "feedback")  # a step has all of them or none


class LessonError(ValueError):
    """A lesson file that cannot be used; the message names the file and says why."""


@dataclass(frozen=True)
class Question:
    """Asked when its step opens, before the task: the learner predicts, then reads why."""
    text: str
    options: tuple[str, ...]  # 2 to 4
    answer: int  # the right option's number, counted from 1 as the file writes it
    feedback: tuple[str, ...]  # one line per option: why it is right or wrong


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    page: str  # a page's id, one of PAGES
    check: str  # one of CHECKS
    times: int = 1  # new_eps: how many new ε
    models: tuple[str, ...] = ()  # compare: the two models' names (checkpoint file stems)
    question: Question | None = None


@dataclass(frozen=True)
class Lesson:
    id: str  # the file's stem, as the URL names it: ?lesson=<id>
    title: str
    summary: str
    steps: tuple[Step, ...]


def read_lesson(path: str | Path) -> Lesson:
    """The lesson in ``path``; LessonError saying which file and why if it cannot be used."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise LessonError(f"{path.name} does not parse: {e}") from None
    try:
        title, summary = _text(data, "title"), _text(data, "summary")
        steps = tuple(_step(raw, i) for i, raw in enumerate(data["steps"], start=1))
        lesson = Lesson(path.stem, title, summary, steps)
    except KeyError as e:
        raise LessonError(f"{path.name} lacks {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise LessonError(f"{path.name}: {e}") from None
    if not steps:
        raise LessonError(f"{path.name} has no steps")
    return lesson


def _text(table: dict, key: str) -> str:
    return _words(table[key], repr(key))


def _words(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    return " ".join(value.split())


def _step(raw, number: int) -> Step:
    """One ``[[steps]]`` table, checked against PAGES, CHECKS and the options each check takes."""
    if not isinstance(raw, dict):
        raise ValueError(f"step {number} is not a table")
    page, check = raw.get("page"), raw.get("check")
    if page not in PAGES:
        raise ValueError(f"step {number} names an unknown page {page!r} (pages: {', '.join(PAGES)})")
    if check not in CHECKS:
        raise ValueError(f"step {number} names an unknown check {check!r} (checks: {', '.join(CHECKS)})")
    extra = set(raw) - {"title", "text", "page", "check", *QUESTION_FIELDS} - OPTIONS.get(check, set())
    if extra:
        raise ValueError(f"step {number}'s check {check!r} takes no {', '.join(sorted(extra))}")
    times, models = raw.get("times", 1), tuple(raw.get("models", ()))
    if not isinstance(times, int) or times < 1:
        raise ValueError(f"step {number}: times must be a whole number >= 1, got {times!r}")
    if check == "compare" and (len(models) != 2 or not all(isinstance(m, str) for m in models)):
        raise ValueError(f"step {number}: compare needs two model names in models, got {list(models)!r}")
    question = _question(raw, number) if set(QUESTION_FIELDS) & set(raw) else None
    return Step(_text(raw, "title"), _text(raw, "text"), page, check, times, models, question)


def _question(raw: dict, number: int) -> Question:
    """A step's question: its text, 2 to 4 options, the right one's number and a line of feedback per option."""
    missing = [field for field in QUESTION_FIELDS if field not in raw]
    if missing:
        raise ValueError(f"step {number}'s question needs {', '.join(QUESTION_FIELDS)}; it lacks {', '.join(missing)}")
    options, answer, feedback = raw["options"], raw["answer"], raw["feedback"]
    if not isinstance(options, list) or not 2 <= len(options) <= 4:
        raise ValueError(f"step {number}: options must be a list of 2 to 4 answers, got {options!r}")
    if type(answer) is not int or not 1 <= answer <= len(options):  # not a bool, which is an int too
        raise ValueError(f"step {number}: answer must be the right option's number, 1 to {len(options)}, "
                         f"got {answer!r}")
    if not isinstance(feedback, list) or len(feedback) != len(options):
        raise ValueError(f"step {number}: feedback must be a list of {len(options)} lines, one per option, "
                         f"got {feedback!r}")
    return Question(_words(raw["question"], f"step {number}'s question"),
                    tuple(_words(o, f"step {number}'s option {i}") for i, o in enumerate(options, start=1)),
                    answer,
                    tuple(_words(f, f"step {number}'s feedback {i}") for i, f in enumerate(feedback, start=1)))


def load_lessons(folder: str | Path = LESSON_DIR) -> tuple[dict[str, Lesson], list[str]]:
    """({id: lesson} of every usable ``*.toml`` in ``folder``, in name order; [why each other file
    was left out])."""
    lessons, problems = {}, []
    for path in sorted(Path(folder).glob("*.toml")):
        try:
            lessons[path.stem] = read_lesson(path)
        except LessonError as e:
            problems.append(str(e))
    return lessons, problems


def main(argv=None) -> int:
    folder = Path(argv[0]) if argv else LESSON_DIR
    lessons, problems = load_lessons(folder)
    for lesson in lessons.values():
        print(f"{lesson.id}: {lesson.title} ({len(lesson.steps)} steps)")
        for i, step in enumerate(lesson.steps, start=1):
            print(f"  {i:2d}. {step.title}  [{step.page}; {CHECKS[step.check]}]")
            if step.question is not None:
                print(f"      ? {step.question.text} ({len(step.question.options)} options, "
                      f"the right one {step.question.answer})")
    for problem in problems:
        print(f"left out: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
