"""Ratings, winners and blind votes, as the grid's buttons, the Vote tab and the API send them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Id, Strict, check, text, whole

CHOICES = ("A", "B", "tie", "both bad")
Stars = whole(1, 5)
Thumbs = whole(-1, 1)
Note = text("max_note_chars")
Voter = text("max_voter_chars")       # accepted for old clients; the server decides who votes
Reason = text("max_reason_chars")
Token = text(200, empty=False)


class Rating(Strict):
    """Stars, thumbs and a note on one run; a field left out (None) keeps its value."""

    run_id: Id
    stars: Stars | None = None
    thumbs: Thumbs | None = None
    note: Note | None = None


class Winner(Strict):
    """One run picked as the winner of its comparison."""

    comparison_id: Id
    run_id: Id


class VotePairRequest(Strict):
    comparison_id: Id
    voter: Voter = Field("", description="ignored: the voter is your sign-in, else this client's session")


class VoteCastRequest(Strict):
    token: Token
    choice: Literal[CHOICES]
    voter: Voter = Field("", description="ignored, as in vote_pair")
    reason: Reason = ""


class RatingValues(Strict):
    stars: Stars | None = None
    thumbs: Thumbs | None = None
    note: Note | None = None


def check_rating(stars, thumbs, note, settings=None) -> None:
    """Stars 1-5, thumbs -1/0/1 and a note within the limit (each may be None); else a RequestError."""
    check(RatingValues, {"stars": stars, "thumbs": thumbs, "note": note}, settings, root="rating")
