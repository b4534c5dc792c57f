#!/usr/bin/env python3
"""Retrieval quality of a running ragd over a question set: hit@1, hit@5 and MRR@10 for each
search mode. A question is answered when a result comes from one of the files it names.

    scripts/eval-retrieval.py BASE_URL TOKEN QUESTIONS.json

scripts/eval-retrieval.sh sets up ragd with the Rust book and calls this.
"""
import json
import sys
import urllib.request

MODES = ("vector", "keyword", "hybrid")
TOP_K = 10


def search(base: str, token: str, query: str, mode: str) -> list:
    request = urllib.request.Request(
        f"{base}/api/v1/search",
        data=json.dumps({"query": query, "mode": mode, "top_k": TOP_K}).encode(),
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["results"]


def first_hit_rank(results: list, expected: set) -> int | None:
    for rank, result in enumerate(results, start=1):
        if result["filename"] in expected:
            return rank
    return None


def main() -> None:
    base, token, questions_path = sys.argv[1:4]
    questions = json.load(open(questions_path))["questions"]
    print(f"{len(questions)} questions, top_k {TOP_K}")
    print("| mode | hit@1 | hit@5 | MRR@10 |")
    print("|---|---|---|---|")
    misses = {}
    for mode in MODES:
        ranks = [first_hit_rank(search(base, token, q["q"], mode), set(q["expect"])) for q in questions]
        hit1 = sum(r == 1 for r in ranks) / len(ranks)
        hit5 = sum(r is not None and r <= 5 for r in ranks) / len(ranks)
        mrr = sum(1 / r for r in ranks if r is not None) / len(ranks)
        print(f"| {mode} | {hit1:.2f} | {hit5:.2f} | {mrr:.3f} |")
        misses[mode] = [q["q"] for q, r in zip(questions, ranks) if r is None or r > 5]
    for mode, missed in misses.items():
        print(f"\nnot in the top 5 with {mode} ({len(missed)}):")
        for question in missed:
            print(f"  - {question}")


if __name__ == "__main__":
    main()
