"""Feed items ranked for the user, learned from the catalog in the spirit of arxiv-sanity.

Every catalog paper is a document (title, abstract, summary, notes, tags), tokenized like search
(kb/search.py: stemmed English words, character bigrams for Japanese), weighted by tf-idf. Each tag
gets a linear model: a logistic regression of the tag's papers (★ papers weigh double) against the
other papers and the feed items the user skipped; a tag with nothing to contrast with (every paper
has it, nothing skipped) is scored by its papers' centroid instead. An item's score is its best
tag's normalised linear score ``x·w/|w|``; the reasons are that tag and the terms that added most.
The fitted model is cached under KB_HOME/cache/feed keyed by a fingerprint of the catalog, so it is
retrained exactly when the catalog changes. No network, no downloaded models.
"""

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from sqlmodel import Session, select

from kb.feed.decisions import starred_keys
from kb.feed.rss import Announcement
from kb.models import FeedDecision, FeedItem, Note, Paper
from kb.search import stem, tokenize
from kb.settings import Settings

ALL_PAPERS = "your catalog"       # the one group of a catalog without tags
TERMS_SHOWN = 4


@dataclass
class Ranked:
    item: Announcement
    score: float | None
    reasons: list[str] = field(default_factory=list)
    note: str | None = None        # e.g. "new version of a paper you have"


@dataclass
class Corpus:
    texts: list[str]
    tags: list[list[str]]
    starred: list[bool]
    negatives: list[str]            # skipped feed items

    def fingerprint(self) -> str:
        blob = json.dumps([self.texts, self.tags, self.starred, self.negatives], ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]


@dataclass
class Model:
    vectorizer: object
    groups: dict[str, object]      # tag -> unit weight vector (numpy, over the vocabulary)
    vocabulary: list[str]


def item_text(title: str, abstract: str) -> str:
    return f"{title}\n{abstract}"


def corpus_of(session: Session, settings: Settings) -> Corpus:
    notes: dict[int, list[str]] = {}
    for paper_id, body in session.exec(select(Note.paper_id, Note.body).order_by(Note.paper_id, Note.path)):
        notes.setdefault(paper_id, []).append(body)
    stars = starred_keys(session, settings)
    papers = list(session.exec(select(Paper).order_by(Paper.key)))
    texts = [item_text(p.title, p.abstract) + "\n" + p.summary + "\n" + "\n".join(notes.get(p.id, []))
             + "\n" + " ".join(t.replace("-", " ") for t in p.tags) for p in papers]
    skipped = session.exec(select(FeedItem.title, FeedItem.abstract).join(FeedDecision, FeedDecision.key == FeedItem.key)
                           .where(FeedDecision.action == "skipped").order_by(FeedItem.key))
    return Corpus(texts, [list(p.tags) for p in papers], [p.key in stars for p in papers],
                  [item_text(t, a) for t, a in skipped])


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(stem(w) for w in ENGLISH_STOP_WORDS)


def _tokens(text: str) -> list[str]:
    """Search's tokens (stems, Japanese bigrams) without English stop words, which a small catalog cannot down-weight."""
    stop = _stop_words()
    return [t for t in tokenize(text) if t not in stop]


def train(corpus: Corpus) -> Model:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=_tokens, sublinear_tf=True)
    features = vectorizer.fit_transform(corpus.texts + corpus.negatives)
    catalog, skipped = features[: len(corpus.texts)], len(corpus.negatives)
    names = sorted({t for tags in corpus.tags for t in tags}) or [ALL_PAPERS]
    weights = np.where(corpus.starred, 2.0, 1.0)
    groups = {}
    for name in names:
        positive = np.array([name == ALL_PAPERS or name in tags for tags in corpus.tags])
        labels = np.concatenate([positive, np.zeros(skipped, dtype=bool)])
        if labels.all():
            direction = np.asarray(catalog.T @ weights).ravel()
        else:
            sample_weight = np.concatenate([weights, np.ones(skipped)])
            model = LogisticRegression(class_weight="balanced", C=10.0, max_iter=1000)
            model.fit(features, labels, sample_weight=sample_weight)
            direction = model.coef_.ravel()
        norm = np.linalg.norm(direction)
        if norm > 0:
            groups[name] = direction / norm
    return Model(vectorizer, groups, list(vectorizer.get_feature_names_out()))


def load_model(session: Session, settings: Settings) -> Model | None:
    """The catalog's model, from the cache when the catalog has not changed; None for an empty catalog."""
    import joblib

    corpus = corpus_of(session, settings)
    if not corpus.texts:
        return None
    folder = settings.cache_dir / "feed"
    path = folder / f"model-{corpus.fingerprint()}.joblib"
    if path.exists():
        return joblib.load(path)
    model = train(corpus)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("model-*.joblib"):
        old.unlink()
    tmp = path.with_suffix(".tmp")
    joblib.dump(model, tmp)
    tmp.replace(path)
    return model


def rank(model: Model | None, items: list[Announcement]) -> list[Ranked]:
    """Items best first, each with its score and reasons; announcement order without a model."""
    if model is None or not items:
        return [Ranked(item, None) for item in items]
    import numpy as np

    features = model.vectorizer.transform([item_text(i.title, i.abstract) for i in items])
    names = list(model.groups)
    directions = np.stack([model.groups[n] for n in names])           # (groups, vocabulary)
    scores = np.asarray(features @ directions.T)                       # (items, groups)
    ranked = []
    for row, item in enumerate(items):
        best = int(scores[row].argmax())
        contribution = features[row].toarray().ravel() * directions[best]
        top = [model.vocabulary[i] for i in np.argsort(-contribution)[:TERMS_SHOWN] if contribution[i] > 0]
        reasons = []
        if top:
            reasons = ([] if names[best] == ALL_PAPERS else [f"tag {names[best]}"]) + ["terms " + ", ".join(top)]
        ranked.append(Ranked(item, round(float(scores[row, best]), 4), reasons))
    order = sorted(range(len(items)), key=lambda i: -ranked[i].score)
    return [ranked[i] for i in order]
