r"""The run-search filter language, parsed into a small syntax tree and compiled to one query.

``search_runs(filter=..., order_by=...)`` takes text such as::

    metrics.auc > 0.8 and params.model = 'rf'
    status = 'finished' and start_time >= '2026-11-22' and not tags.stage = 'dev'
    metrics.`val loss` < 0.3 or (params.optimizer in ('adam', 'sgd') and metrics.epoch >= 10)

**Fields.** ``metrics.<key>`` is the run's latest value of that metric; ``params.<key>`` and
``tags.<key>`` are text. A run's attributes are written bare or as ``attributes.<name>``:
``run_id`` (or ``id``), ``name``, ``status``, ``user``, ``kind``, ``start_time``,
``end_time``, ``experiment_id``, ``parent_run_id``, ``git_commit``, ``git_branch``. The
prefixes ``metric.``, ``param.``, ``tag.``, ``attribute.`` and ``run.`` work too. A key is
letters, digits and ``_ - . / :``, so ``metrics.train/loss`` and ``metrics.val.auc`` are the
keys ``train/loss`` and ``val.auc``; quote any other key with backticks or double quotes:
``metrics.`val loss```. Keys are case-sensitive; keywords, prefixes and attribute names are
not.

**Operators.** ``=`` (or ``==``), ``!=`` (or ``<>``), ``<``, ``<=``, ``>``, ``>=``;
``IN (v1, v2, ...)`` and ``NOT IN (...)``; ``IS NULL`` and ``IS NOT NULL``; on text,
``LIKE``, ``NOT LIKE``, ``ILIKE`` and ``NOT ILIKE``, where ``%`` stands for any run of
characters, ``_`` for one character, and a backslash makes the next character literal
(``'50\%'``). LIKE is case-sensitive on every database; ILIKE ignores case (on SQLite, the case
of ASCII letters only). Comparisons combine with ``AND``, ``OR``, ``NOT`` and parentheses;
``NOT`` binds tightest, then ``AND``, then ``OR``.

**Values.** Numbers (``1``, ``-0.5``, ``1e-3``) and strings in single or double quotes; double
the quote to put one inside (``'it''s'``). Metrics compare to numbers; params, tags and the
text attributes compare to strings, so quote numbers there: ``params.lr = '0.1'``. Text
compares and sorts by code point on every database, so ``params.epochs < '9'`` holds for
``'10'``. ``start_time`` and ``end_time`` take milliseconds since the epoch or an ISO-8601
string (``'2026-11-22'``, ``'2026-11-22T10:00:00Z'``; without a time zone, UTC). ``status`` is
one of ``running``, ``finished``, ``failed``, ``killed``, in any case.

**Missing values.** A comparison on a metric, param or tag that a run does not have is
*unknown* (SQL NULL), and unknown never matches, not even under ``NOT``:
``not metrics.auc > 0.8`` finds the runs whose auc is at most 0.8, not the runs without one,
and ``params.model != 'rf'`` skips runs that have no model param. ``AND``, ``OR`` and ``NOT``
follow SQL's three-valued logic: unknown OR true is true, and unknown AND false is false, so
``metrics.auc > 0.8 or params.model = 'rf'`` matches a run without an auc whose model is
``'rf'``, and so does ``not (metrics.auc > 0.8 and params.model = 'gbm')``.
``metrics.auc IS NULL`` finds the runs without an auc. Attributes that may be empty
(``end_time`` of a running run, ``parent_run_id``, ``git_commit``, ``git_branch``) behave the
same way.

**Order.** ``order_by`` is a list of ``"<field> [ASC|DESC]"`` items, ascending unless DESC,
e.g. ``["metrics.auc DESC", "start_time"]``; by default the newest runs come first
(``start_time DESC``). Runs without a value for a sort field come last in either direction,
and ties are broken by run id, descending, so pages fetched with ``limit`` and ``offset``
neither overlap nor skip runs.

**Limits and errors.** A filter is at most 10,000 characters, uses at most 50 distinct
metric, param and tag keys (filter and order_by together) and nests parentheses and ``NOT`` at
most 50 deep. Anything else raises :class:`~mloop.errors.InvalidFilterError` naming the
offending token, its position (counting from 0) and what was expected; for
``metrics.auc>1 && metrics.auc<2``::

    invalid filter at position 14 ('&&'): expected AND, OR or the end of the filter
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NoReturn, assert_never

import sqlalchemy as sa

from mloop.errors import InvalidFilterError, InvalidInputError
from mloop.store._filter_sql import (
    ATTRIBUTE_COLUMNS,
    KeyJoins,
    compare,
    select_run_ids,
    sort_keys,
)
from mloop.store._records import RUN_STATUSES

__all__ = [
    "MAX_DEPTH",
    "MAX_FILTER_LENGTH",
    "MAX_KEYS",
    "And",
    "Comparison",
    "Expr",
    "Field",
    "Not",
    "Or",
    "OrderTerm",
    "build_search_query",
    "parse_filter",
    "parse_order_by",
]

MAX_FILTER_LENGTH = 10_000
MAX_KEYS = 50
MAX_DEPTH = 50

FieldKind = Literal["metrics", "params", "tags", "attributes"]
Op = Literal[
    "=", "!=", "<", "<=", ">", ">=", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE",
    "IN", "NOT IN", "IS NULL", "IS NOT NULL",
]  # fmt: skip
# metrics → float, start_time/end_time → int ms, everything else → str.
Scalar = str | int | float


@dataclass(frozen=True)
class Field:
    """What a comparison or sort looks at, e.g. ``Field("metrics", "auc")``.

    Attributes have kind ``"attributes"`` and their canonical name as key (``run_id`` for ``id``).
    """

    kind: FieldKind
    key: str

    def __str__(self) -> str:
        if self.kind == "attributes":
            return self.key
        if self.key and all(_is_key_char(char) for char in self.key):
            return f"{self.kind}.{self.key}"
        return f"{self.kind}.`{self.key.replace('`', '``')}`"


@dataclass(frozen=True)
class Comparison:
    """``field op value``; value is a tuple for IN / NOT IN and None for IS [NOT] NULL."""

    field: Field
    op: Op
    value: Scalar | tuple[Scalar, ...] | None = None


@dataclass(frozen=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    operand: Expr


Expr = Comparison | And | Or | Not


@dataclass(frozen=True)
class OrderTerm:
    field: Field
    descending: bool = False


def parse_filter(text: str) -> Expr:
    """Parse a filter into its syntax tree, or raise InvalidFilterError saying where and why.

    >>> parse_filter("metrics.auc > 0.8")
    Comparison(field=Field(kind='metrics', key='auc'), op='>', value=0.8)
    """
    if not isinstance(text, str):
        raise InvalidInputError(
            f'filter must be a string such as "metrics.auc > 0.8", not {type(text).__name__}'
        )
    _check_length(text, "filter")
    parser = _Parser(text, where="filter", noun="filter")
    expr = parser.disjunction()
    parser.expect_end("AND, OR or the end of the filter")
    return expr


def parse_order_by(items: Sequence[str]) -> list[OrderTerm]:
    """Parse ``["metrics.auc DESC", "start_time"]`` into sort terms (ASC unless DESC)."""
    if isinstance(items, str) or not isinstance(items, Sequence):
        raise InvalidInputError(
            "order_by must be a list of strings such as ['metrics.auc DESC'], "
            f"not {type(items).__name__}"
        )
    terms = []
    for index, item in enumerate(items):
        where = f"order_by[{index}]"
        if not isinstance(item, str):
            raise InvalidInputError(
                f"{where} must be a string such as 'metrics.auc DESC', not {type(item).__name__}"
            )
        _check_length(item, where)
        parser = _Parser(item, where=where, noun="item")
        field = parser.field()
        direction = parser.keyword("ASC", "DESC")
        if direction:
            parser.advance()
        parser.expect_end("ASC, DESC or the end of the item")
        terms.append(OrderTerm(field, descending=direction == "DESC"))
    return terms


def build_search_query(
    *,
    experiment_ids: Sequence[str] | None,
    filter: str | None,  # the public name, though it shadows the builtin
    order_by: Sequence[str] | None,
    limit: int | None,
    offset: int = 0,
    include_deleted: bool = False,
) -> sa.Select[str]:
    """A SELECT of ``runs.id`` for the runs matching ``filter``, in order, one page of them.

    An empty or blank filter matches every run; ``experiment_ids=[]`` matches none.
    """
    if filter is not None and not isinstance(filter, str):
        raise InvalidInputError(
            f'filter must be a string such as "metrics.auc > 0.8" or None, '
            f"not {type(filter).__name__}"
        )
    expr = parse_filter(filter) if filter is not None and filter.strip() else None
    terms = parse_order_by(order_by) if order_by is not None else []
    _check_key_count(expr, terms)

    joins = KeyJoins()
    return select_run_ids(
        joins,
        where=None if expr is None else _compile(expr, joins),
        order=[key for term in terms or [_NEWEST_FIRST] for key in _order(term, joins)],
        experiment_ids=experiment_ids,
        include_deleted=include_deleted,
        limit=limit,
        offset=offset,
    )


# --- tokens -----------------------------------------------------------------------------------

_PREFIXES: dict[str, FieldKind] = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "run": "attributes",
}
_ATTRIBUTE_ALIASES = {"id": "run_id"}
_TIME_ATTRIBUTES = frozenset({"start_time", "end_time"})
_KEYWORDS = frozenset({"AND", "OR", "NOT", "LIKE", "ILIKE", "IN", "IS", "NULL", "ASC", "DESC"})
_OPERATORS: dict[str, Op] = {
    "=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
}  # fmt: skip
_WORD_OPERATORS: dict[str, Op] = {
    "LIKE": "LIKE", "NOT LIKE": "NOT LIKE", "ILIKE": "ILIKE", "NOT ILIKE": "NOT ILIKE",
}  # fmt: skip
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_QUOTES = "'\"`"
_PUNCTUATION = "(),"
_OPERATOR_CHARS = "=<>!"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATUS_CHOICE = "one of " + ", ".join(RUN_STATUSES)

TokenKind = Literal["word", "field", "string", "name", "number", "op", "(", ")", ",", "bad", "end"]


@dataclass(frozen=True)
class _Token:
    kind: TokenKind
    text: str  # as written, quotes included
    position: int
    value: str = ""  # the unquoted text of a string, or the key of a "field" token
    prefix: str = ""  # the "metrics." before the quoted key of a "field" token


def _is_key_char(char: str) -> bool:
    return char.isalnum() or char in "_-./:"


def _is_other(char: str) -> bool:
    """A character no token starts with: it goes into a "bad" token for the parser to name."""
    return not (
        char.isspace()
        or _is_key_char(char)
        or char in _QUOTES
        or char in _PUNCTUATION
        or char in _OPERATOR_CHARS
    )


class _Lexer:
    """Splits text into tokens on demand, so errors come in the order they are written."""

    def __init__(self, text: str, fail: Callable[[int, str, str], NoReturn]) -> None:
        self.text = text
        self.fail = fail
        self.at = 0

    def next(self) -> _Token:
        text, n = self.text, len(self.text)
        while self.at < n and text[self.at].isspace():
            self.at += 1
        start = self.at
        if start == n:
            return _Token("end", "", n)
        char = text[start]
        if char in _QUOTES:
            value = self._quoted()
            return _Token("name" if char == "`" else "string", text[start : self.at], start, value)
        if self._starts_number():
            self.at += 1
            while self.at < n and (
                _is_key_char(text[self.at]) or (text[self.at] == "+" and text[self.at - 1] in "eE")
            ):
                self.at += 1
            word = text[start : self.at]
            if not _NUMBER.fullmatch(word):
                self.fail(
                    start,
                    word,
                    "expected a number such as 0.8, -1 or 1e-3; quote text and times, "
                    f"e.g. '{word}'",
                )
            return _Token("number", word, start)
        if char.isalpha() or char == "_":
            while self.at < n and _is_key_char(text[self.at]):
                self.at += 1
            if text[self.at - 1] == "." and self.at < n and text[self.at] in '`"':
                prefix = text[start : self.at]  # metrics.`val loss`: a prefix and a quoted key
                key = self._quoted()
                return _Token("field", text[start : self.at], start, key, prefix)
            return _Token("word", text[start : self.at], start)
        if char in _PUNCTUATION:
            self.at += 1
            kind: TokenKind = "(" if char == "(" else ")" if char == ")" else ","
            return _Token(kind, char, start)
        for operator in (text[start : start + 2], char):  # the longest first: <= before <
            if len(operator) == len(text[start : start + len(operator)]) and operator in _OPERATORS:
                self.at += len(operator)
                return _Token("op", operator, start)
        self.at += 1  # a run of characters no token starts with, e.g. && or ||
        while self.at < n and _is_other(text[self.at]):
            self.at += 1
        return _Token("bad", text[start : self.at], start)

    def _starts_number(self) -> bool:
        text, at = self.text, self.at
        if text[at] in "+-":
            at += 1
        if text[at : at + 1] == ".":
            at += 1
        return text[at : at + 1].isascii() and text[at : at + 1].isdigit()

    def _quoted(self) -> str:
        """Read a quoted string or key starting at the quote; a doubled quote stands for one."""
        text, start = self.text, self.at
        quote = text[start]
        parts = []
        at = start + 1
        while True:
            end = text.find(quote, at)
            if end < 0:
                self.fail(
                    start,
                    text[start:],
                    f"expected a closing {quote} (double it to put one inside: {quote * 2})",
                )
            parts.append(text[at:end])
            if text[end + 1 : end + 2] != quote:
                break
            parts.append(quote)
            at = end + 2
        self.at = end + 1
        value = "".join(parts)
        if "\x00" in value:
            self.fail(start, text[start : self.at], "a quoted value cannot contain a NUL character")
        return value


# --- parser -----------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the grammar::

    disjunction := conjunction ("OR" conjunction)*
    conjunction := negation ("AND" negation)*
    negation    := "NOT" negation | "(" disjunction ")" | comparison
    comparison  := field op value | field ["NOT"] ("LIKE" | "ILIKE") string
                 | field ["NOT"] "IN" "(" value ("," value)* ")" | field "IS" ["NOT"] "NULL"
    """

    def __init__(self, text: str, *, where: str, noun: str) -> None:
        self.where = where
        self.noun = noun
        self.lexer = _Lexer(text, self._fail_at)
        self.token = self.lexer.next()
        self.depth = 0
        self.keys: set[tuple[str, str]] = set()

    # helpers

    def _fail_at(self, position: int, text: str, expected: str) -> NoReturn:
        shown = (
            repr(text if len(text) <= 40 else text[:37] + "...")
            if text
            else f"end of the {self.noun}"
        )
        raise InvalidFilterError(
            f"invalid {self.where} at position {position} ({shown}): {expected}"
        )

    def fail(self, token: _Token, expected: str) -> NoReturn:
        self._fail_at(token.position, token.text, expected)

    def advance(self) -> _Token:
        token = self.token
        if token.kind != "end":
            self.token = self.lexer.next()
        return token

    def accept(self, kind: TokenKind) -> bool:
        """Step over the current token if it is of ``kind``."""
        if self.token.kind != kind:
            return False
        self.advance()
        return True

    def expect(self, kind: TokenKind, expected: str) -> None:
        if not self.accept(kind):
            self.fail(self.token, expected)

    def keyword(self, *words: str) -> str | None:
        """The current token's keyword, upper-cased, if it is one of ``words``."""
        if self.token.kind == "word" and (word := self.token.text.upper()) in words:
            return word
        return None

    def expect_end(self, expected: str) -> None:
        if self.token.kind != "end":
            self.fail(self.token, f"expected {expected}")

    def _nest(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(token, f"parentheses and NOT nest more than {MAX_DEPTH} deep")

    # grammar

    def disjunction(self) -> Expr:
        operands = [self.conjunction()]
        while self.keyword("OR"):
            self.advance()
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def conjunction(self) -> Expr:
        operands = [self.negation()]
        while self.keyword("AND"):
            self.advance()
            operands.append(self.negation())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def negation(self) -> Expr:
        token = self.token
        if self.keyword("NOT"):
            self._nest(self.advance())
            expr: Expr = Not(self.negation())
        elif token.kind == "(":
            self._nest(self.advance())
            expr = self.disjunction()
            self.expect(")", f"expected AND, OR or ')' to close the '(' at {token.position}")
        else:
            return self.comparison()
        self.depth -= 1
        return expr

    def comparison(self) -> Comparison:
        field = self.field()
        token = self.advance()
        if token.kind == "op":
            op = _OPERATORS[token.text]
            return Comparison(field, op, self.value(field, op))
        word = token.text.upper() if token.kind == "word" else ""
        negated = word == "NOT"
        if negated:
            after = self.advance()
            word = after.text.upper() if after.kind == "word" else ""
            if word not in ("LIKE", "ILIKE", "IN"):
                self.fail(after, "expected LIKE, ILIKE or IN after NOT")
        if word in ("LIKE", "ILIKE"):
            op = _WORD_OPERATORS[("NOT " if negated else "") + word]
            return Comparison(field, op, self.pattern(field, op, token))
        if word == "IN":
            op = "NOT IN" if negated else "IN"
            return Comparison(field, op, self.values(field, op))
        if word == "IS":
            is_not = self.keyword("NOT")
            if is_not:
                self.advance()
            if not self.keyword("NULL"):
                self.fail(self.token, "expected NULL or NOT NULL after IS")
            self.advance()
            return Comparison(field, "IS NOT NULL" if is_not else "IS NULL")
        self.fail(
            token,
            f"expected an operator after {field}: =, !=, <, <=, >, >=, LIKE, ILIKE, IN or IS",
        )

    def field(self) -> Field:
        token = self.advance()
        if token.kind == "field":
            kind = _PREFIXES.get(token.prefix.removesuffix(".").lower())
            if kind is None or kind == "attributes":
                self.fail(token, "expected metrics., params. or tags. before a quoted key")
            return self._key_field(token, kind, token.value)
        if token.kind == "name":
            self.fail(token, f"put the prefix before the quoted key, e.g. metrics.{token.text}")
        if token.kind != "word" or token.text.upper() in _KEYWORDS:
            self.fail(token, _expected_field())
        head, dot, rest = token.text.partition(".")
        if not dot:
            return self._attribute(token, head)
        kind = _PREFIXES.get(head.lower())
        if kind is None:
            self.fail(token, f"unknown prefix {head + '.'!r}; {_expected_field()}")
        if not rest:
            self.fail(token, f"expected a key after {head}.")
        if kind == "attributes":
            return self._attribute(token, rest)
        return self._key_field(token, kind, rest)

    def _key_field(self, token: _Token, kind: FieldKind, key: str) -> Field:
        if not key:
            self.fail(token, "expected a key between the quotes")
        self.keys.add((kind, key))
        if len(self.keys) > MAX_KEYS:
            self.fail(token, f"a {self.noun} may use at most {MAX_KEYS} metric, param and tag keys")
        return Field(kind, key)

    def _attribute(self, token: _Token, name: str) -> Field:
        name = _ATTRIBUTE_ALIASES.get(name.lower(), name.lower())
        if name not in ATTRIBUTE_COLUMNS:
            self.fail(token, f"unknown attribute {name!r}; {_expected_field()}")
        return Field("attributes", name)

    def value(self, field: Field, op: Op) -> Scalar:
        token = self.advance()
        if token.kind == "word" and token.text.upper() == "NULL":
            self.fail(token, f"compare with NULL by writing {field} IS NULL or IS NOT NULL")
        if token.kind == "word":
            self.fail(
                token, f"expected a value; quote text: {_example(field, op, repr(token.text))}"
            )
        if token.kind == "name":
            self.fail(token, "expected a value: quote strings with ' or \", not `")
        if token.kind not in ("number", "string"):
            self.fail(token, "expected a value: a number or a quoted string")
        return self._typed(field, op, token)

    def values(self, field: Field, op: Op) -> tuple[Scalar, ...]:
        self.expect("(", f"expected '(' and a list of values after {op}")
        values = [self.value(field, op)]
        while self.accept(","):
            values.append(self.value(field, op))
        self.expect(")", "expected ',' or ')' in the list of values")
        return tuple(values)

    def pattern(self, field: Field, op: Op, op_token: _Token) -> str:
        what = _value_type(field)
        if what == "status":
            self.fail(op_token, f"{op} compares text; status is {_STATUS_CHOICE}: use = or IN")
        if what != "text":
            self.fail(op_token, f"{op} compares text, and {field} is a {what}: use =, <, >, IN...")
        token = self.advance()
        if token.kind != "string":
            self.fail(token, f"expected a quoted pattern after {op}, e.g. {field} {op} 'rf%'")
        escaped = False
        for char in token.value:
            escaped = not escaped and char == "\\"
        if escaped:
            self.fail(token, "a pattern cannot end with a lone backslash; write \\\\ for one")
        return token.value

    def _typed(self, field: Field, op: Op, token: _Token) -> Scalar:
        """The value converted for ``field``, or an error that says how to write it."""
        what = _value_type(field)
        if what == "number":
            if token.kind == "string":
                number = token.value.strip()
                example = number if _NUMBER.fullmatch(number) else "0.8"
                self.fail(token, f"metrics are numbers: write {_example(field, op, example)}")
            number_value = float(token.text)
            if not math.isfinite(number_value):
                self.fail(token, "expected a number between -1.7e308 and 1.7e308")
            return number_value
        if what == "time":
            return self._time(token)
        if token.kind == "number":
            kind = f"{field.kind} are strings" if field.kind != "attributes" else f"{field} is text"
            self.fail(token, f"{kind}: write {_example(field, op, repr(token.text))}")
        if what == "status":
            status = token.value.lower()
            if status not in RUN_STATUSES:
                self.fail(token, f"status is {_STATUS_CHOICE}")
            return status
        return token.value

    def _time(self, token: _Token) -> int:
        if token.kind == "number":
            number = float(token.text)  # exact for the whole numbers accepted here
            if not number.is_integer() or abs(number) > 2**53:
                self.fail(token, "expected whole milliseconds since the epoch")
            return int(number)
        try:
            when = datetime.fromisoformat(token.value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return (when - _EPOCH) // timedelta(milliseconds=1)
        except (ValueError, OverflowError):
            self.fail(
                token,
                "expected a time: an ISO-8601 string such as '2026-11-22' or "
                "'2026-11-22T10:00:00Z', or milliseconds since the epoch",
            )


def _value_type(field: Field) -> Literal["number", "time", "status", "text"]:
    if field.kind == "metrics":
        return "number"
    if field.kind == "attributes" and field.key in _TIME_ATTRIBUTES:
        return "time"
    if field.kind == "attributes" and field.key == "status":
        return "status"
    return "text"


def _is_text(field: Field) -> bool:
    return _value_type(field) in ("text", "status")


def _example(field: Field, op: Op, value: str) -> str:
    return f"{field} {op} ({value}, ...)" if op in ("IN", "NOT IN") else f"{field} {op} {value}"


def _or_list(words: Sequence[str]) -> str:
    return ", ".join(words[:-1]) + " or " + words[-1]


def _expected_field() -> str:
    return (
        "expected a field: metrics.<key>, params.<key>, tags.<key> or an attribute "
        f"({_or_list([*ATTRIBUTE_COLUMNS, 'id'])})"
    )


def _check_length(text: str, where: str) -> None:
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilterError(
            f"invalid {where} at position {MAX_FILTER_LENGTH} ({text[MAX_FILTER_LENGTH:][:20]!r}"
            f"...): expected the end: the limit is {MAX_FILTER_LENGTH:,} characters, and this "
            f"is {len(text):,}"
        )


# --- compiler ---------------------------------------------------------------------------------

_NEWEST_FIRST = OrderTerm(Field("attributes", "start_time"), descending=True)


def _fields(expr: Expr) -> Iterator[Field]:
    match expr:
        case Comparison():
            yield expr.field
        case And() | Or():
            for operand in expr.operands:
                yield from _fields(operand)
        case Not():
            yield from _fields(expr.operand)
        case _:
            assert_never(expr)


def _check_key_count(expr: Expr | None, terms: Sequence[OrderTerm]) -> None:
    fields = [] if expr is None else _fields(expr)
    keys = {field for field in fields if field.kind != "attributes"}
    for index, term in enumerate(terms):
        if term.field.kind != "attributes":
            keys.add(term.field)
        if len(keys) > MAX_KEYS:
            raise InvalidFilterError(
                f"invalid order_by[{index}] at position 0 ({str(term.field)!r}): the filter and "
                f"order_by together may use at most {MAX_KEYS} metric, param and tag keys"
            )


def _column(field: Field, joins: KeyJoins) -> sa.ColumnElement[Any]:
    if field.kind == "attributes":
        return ATTRIBUTE_COLUMNS[field.key]
    return joins.value(field.kind, field.key)


def _compile(expr: Expr, joins: KeyJoins) -> sa.ColumnElement[bool]:
    match expr:
        case And():
            return sa.and_(*(_compile(operand, joins) for operand in expr.operands))
        case Or():
            return sa.or_(*(_compile(operand, joins) for operand in expr.operands))
        case Not():
            return sa.not_(_compile(expr.operand, joins))
        case Comparison():
            return _compile_comparison(expr, joins)
        case _:
            assert_never(expr)


def _compile_comparison(comparison: Comparison, joins: KeyJoins) -> sa.ColumnElement[bool]:
    column = _column(comparison.field, joins)
    return compare(column, comparison.op, comparison.value, text=_is_text(comparison.field))


def _order(term: OrderTerm, joins: KeyJoins) -> list[sa.UnaryExpression[Any]]:
    field = term.field
    nullable = field.kind != "attributes" or bool(ATTRIBUTE_COLUMNS[field.key].nullable)
    return sort_keys(
        _column(field, joins),
        descending=term.descending,
        nullable=nullable,
        text=_is_text(field),
    )
