"""Feed items ranked for the user, learned from the catalog in the spirit of arxiv-sanity.

Every catalog paper is a document (title, abstract, summary, notes, tags), tokenized like search
(kb/search.py: stemmed English words, character bigrams for Japanese), weighted by tf-idf. Each tag
gets a linear model: a logistic regression of the tag's papers (★ papers weigh double) against the
other papers and the feed items the user skipped; a tag with nothing to contrast with (every paper
has it, nothing skipped) is scored by its papers' centroid instead. An item's score is its best
tag's normalised linear score ``x·w/|w|``; the reasons are that tag and the terms that added most.
The model (vocabulary, idf, one unit vector per tag) is cached under KB_HOME/cache/feed as a numpy
file keyed by a fingerprint of the catalog, so it is retrained exactly when the catalog changes and
scoring needs no scikit-learn. No network, no downloaded models.
"""

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache

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
    vocabulary: dict[str, int]     # term -> column
    idf: object                    # (terms,) numpy
    names: list[str]               # the groups: tags, or ALL_PAPERS
    directions: object             # (groups, terms) numpy: unit weight vectors


def item_text(title: str, abstract: str) -> str:
    return f"{title}\n{abstract}"


def corpus_of(*, session: Session) -> Corpus:
    notes: dict[int, list[str]] = {}
    for paper_id, body in session.exec(select(Note.paper_id, Note.body).order_by(Note.paper_id, Note.path)):
        notes.setdefault(paper_id, []).append(body)
    stars = starred_keys(session=session)
    papers = list(session.exec(select(Paper).order_by(Paper.key)))
    texts = [item_text(p.title, p.abstract) + "\n" + p.summary + "\n" + "\n".join(notes.get(p.id, []))
             + "\n" + " ".join(t.replace("-", " ") for t in p.tags) for p in papers]
    skipped = session.exec(select(FeedItem.title, FeedItem.abstract).join(FeedDecision, FeedDecision.key == FeedItem.key)
                           .where(FeedDecision.action == "skipped").order_by(FeedItem.key))
    return Corpus(texts, [list(p.tags) for p in papers], [p.key in stars for p in papers],
                  [item_text(t, a) for t, a in skipped])


# English function words: a small catalog's idf cannot tell them from topic words.
STOP_WORDS = frozenset("""a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having he her
here hers him his how i if in into is it its itself just may me might more most much must my no nor not now of off on
once one only or other our ours out over own same she should so some such than that the their theirs them then there
these they this those through thus to too two under until up upon us use used using very via was we well were what when
where which while who whom why will with within without would you your""".split())


@lru_cache(maxsize=1)
def _stop_stems() -> frozenset[str]:
    return frozenset(stem(w) for w in STOP_WORDS)


def _tokens(text: str) -> list[str]:
    """Search's tokens (stems, Japanese bigrams) without English stop words, which a small catalog cannot down-weight."""
    stop = _stop_stems()
    return [t for t in tokenize(text) if t not in stop]


def tfidf(texts: list[str], vocabulary: dict[str, int], idf):
    """Rows of sublinear tf-idf (``1 + ln tf``, times idf), each of unit length; terms outside ``vocabulary`` drop.

    kb's own, with numpy and scipy only: importing scikit-learn takes seconds, and a feed scored with
    a cached model needs none of it. It equals scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``
    (tests/test_feed.py checks).
    """
    import numpy as np
    from scipy.sparse import csr_matrix

    rows, columns, values = [], [], []
    for row, text in enumerate(texts):
        counts: dict[int, int] = {}
        for token in _tokens(text):
            column = vocabulary.get(token)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        weights = {c: (1.0 + np.log(n)) * idf[c] for c, n in counts.items()}
        norm = np.sqrt(sum(w * w for w in weights.values())) or 1.0
        for column, weight in sorted(weights.items()):
            rows.append(row)
            columns.append(column)
            values.append(weight / norm)
    return csr_matrix((values, (rows, columns)), shape=(len(texts), len(vocabulary)))


def train(corpus: Corpus) -> Model:
    import numpy as np

    documents = corpus.texts + corpus.negatives
    terms = sorted({t for text in documents for t in _tokens(text)})
    vocabulary = {term: i for i, term in enumerate(terms)}
    frequency = np.zeros(len(terms))
    for text in documents:
        frequency[[vocabulary[t] for t in set(_tokens(text))]] += 1
    idf = np.log((1 + len(documents)) / (1 + frequency)) + 1          # smoothed, as scikit-learn's default
    features = tfidf(documents, vocabulary, idf)
    catalog, skipped = features[: len(corpus.texts)], len(corpus.negatives)
    names = sorted({t for tags in corpus.tags for t in tags}) or [ALL_PAPERS]
    weights = np.where(corpus.starred, 2.0, 1.0)
    kept, directions = [], []
    for name in names:
        positive = np.array([name == ALL_PAPERS or name in tags for tags in corpus.tags])
        labels = np.concatenate([positive, np.zeros(skipped, dtype=bool)])
        if labels.all():
            direction = np.asarray(catalog.T @ weights).ravel()
        else:
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(class_weight="balanced", C=10.0, max_iter=1000)
            model.fit(features, labels, sample_weight=np.concatenate([weights, np.ones(skipped)]))
            direction = model.coef_.ravel()
        norm = np.linalg.norm(direction)
        if norm > 0:
            kept.append(name)
            directions.append(direction / norm)
    return Model(vocabulary, idf, kept, np.stack(directions) if directions else np.zeros((0, len(terms))))


def load_model(settings: Settings, *, session: Session) -> Model | None:
    """The catalog's model, from the cache when the catalog has not changed; None for an empty catalog."""
    import numpy as np

    corpus = corpus_of(session=session)
    if not corpus.texts:
        return None
    folder = settings.cache_dir / "feed"
    path = folder / f"model-{corpus.fingerprint()}.npz"
    if path.exists():
        stored = np.load(path, allow_pickle=False)
        terms = [str(t) for t in stored["terms"]]
        return Model({t: i for i, t in enumerate(terms)}, stored["idf"], [str(n) for n in stored["names"]],
                     stored["directions"])
    model = train(corpus)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("model-*.npz"):
        old.unlink()
    tmp = folder / f"{path.stem}.tmp.npz"
    np.savez(tmp, terms=np.array(list(model.vocabulary), dtype=str), idf=model.idf,
             names=np.array(model.names, dtype=str), directions=model.directions)
    tmp.replace(path)
    return model


def rank(model: Model | None, items: list[Announcement]) -> list[Ranked]:
    """Items best first, each with its score and reasons; announcement order without a model."""
    if model is None or not items or not model.names:
        return [Ranked(item, None) for item in items]
    import numpy as np

    features = tfidf([item_text(i.title, i.abstract) for i in items], model.vocabulary, model.idf)
    names, directions = model.names, model.directions                 # (groups, terms)
    scores = np.asarray(features @ directions.T)                       # (items, groups)
    vocabulary = list(model.vocabulary)
    ranked = []
    for row, item in enumerate(items):
        best = int(scores[row].argmax())
        contribution = features[row].toarray().ravel() * directions[best]
        top = [vocabulary[i] for i in np.argsort(-contribution)[:TERMS_SHOWN] if contribution[i] > 0]
        reasons = []
        if top:
            reasons = ([] if names[best] == ALL_PAPERS else [f"tag {names[best]}"]) + ["terms " + ", ".join(top)]
        ranked.append(Ranked(item, round(float(scores[row, best]), 4), reasons))
    order = sorted(range(len(items)), key=lambda i: -ranked[i].score)
    return [ranked[i] for i in order]
