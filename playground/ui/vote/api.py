"""Blind voting for API clients: text outputs only; pairs are opaque tokens here too."""

from __future__ import annotations

import random

import gradio as gr

from ...requests import VoteCastRequest, VotePairRequest, check
from ...services import Services
from ...stakeholders.votes import PairTokens, cast, next_pair, progress


class VoteApi:
    def __init__(self, services: Services, tokens: PairTokens, rng: random.Random):
        self.services, self.tokens, self.rng = services, tokens, rng

    def register(self, boundary) -> None:
        gr.api(boundary(self.vote_pair), api_name="vote_pair")
        gr.api(boundary(self.vote_cast), api_name="vote_cast")

    def vote_pair(self, comparison_id: int, voter: str = "", request: gr.Request = None) -> dict:
        """Deal a blind pair of a text comparison: {"token", "values", "a", "b", "voted", "total"}, or {"done"}.

        Args:
            comparison_id: the comparison to vote on
            voter: ignored: the server knows the voter (your sign-in, else this client's session)
        """
        ask = check(VotePairRequest, {"comparison_id": comparison_id, "voter": voter}, self.services.settings)
        who = self.services.visitors.voter(request)
        header = self.services.log.get_comparison_header(ask.comparison_id, owner=self.services.visitors.owner(request))
        if header.modality != "text":
            raise gr.Error("API voting shows text outputs; vote on images and music in the Vote tab")
        pair = next_pair(self.services.log, header.id, who, self.rng)
        done, total = progress(self.services.log, header.id, who)
        if pair is None:
            return {"done": True, "voted": done, "total": total}
        return {"token": self.tokens.issue(pair, who), "values": pair.left.variables, "a": pair.left.output_text,
                "b": pair.right.output_text, "voted": done, "total": total}

    def vote_cast(self, token: str, choice: str, voter: str = "", reason: str = "",
                  request: gr.Request = None) -> dict:
        """Vote on a dealt pair: choice is "A", "B", "tie" or "both bad". Returns {"saved": true}.

        Args:
            token: the token vote_pair returned
            choice: A, B, tie or both bad
            voter: ignored, as in vote_pair
            reason: optional, why
        """
        ask = check(VoteCastRequest, {"token": token, "choice": choice, "voter": voter, "reason": reason},
                    self.services.settings)
        who = self.services.visitors.voter(request)
        cast(self.services.log, self.tokens.take(ask.token, who), ask.choice, who, ask.reason)
        return {"saved": True}
