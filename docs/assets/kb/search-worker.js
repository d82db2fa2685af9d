// kb's search worker behind Material for MkDocs' search box: Japanese and English.
//
// Material lets a site replace its search worker: the page sends SETUP (the index settings)
// and QUERY (what was typed), the worker answers READY and RESULT (pages grouped for display).
// docs/overrides/main.html points Material at this file. The index, search/kb_index.json.gz
// (kb/site/search_index.py), holds each page's title and NFKC-normalized plain text.
//
// Tokens follow kb/search.py so the site finds what `kb search` finds: lower case; a run of
// CJK characters becomes overlapping bigrams (物体検出 -> 物体 体検 検出); a Latin word is one
// token. Every query word must match: a Japanese word as a contiguous phrase (candidates from
// its bigrams, then the phrase checked in the text); a Latin word as a prefix of a word on the
// page, or of a word of the same family (the index groups words by kb's stemmer, so detector
// finds detection). Particles split a Japanese query: 検出の精度 asks for 検出 and 精度.

const SETUP = 0, READY = 1, QUERY = 2, RESULT = 3
const CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u30fc"
const RUN = new RegExp(`[${CJK}]+|[a-z0-9]+`, "g")
const IS_CJK = new RegExp(`^[${CJK}]`)
const HIRAGANA = /[\u3040-\u309f]+/g
const ONLY_HIRAGANA = /^[\u3040-\u309f]+$/
const TITLE_WEIGHT = 10
const MAX_RESULTS = 100
const SNIPPET = 160
const MAX_MARKED_WORDS = 20

let pages = []                 // {location, title, text, lowerTitle, lowerText}
let postings = new Map()       // token -> Set of page numbers
let words = []                 // sorted Latin tokens, for prefix lookups
let families = new Map()       // Latin token -> the tokens sharing its stem

function normalize(value) {
  return value.normalize("NFKC").toLowerCase()
}

function bigrams(run) {
  if (run.length === 1) return [run]
  const grams = []
  for (let i = 0; i < run.length - 1; i++) grams.push(run.slice(i, i + 2))
  return grams
}

function tokens(lower) {
  const found = []
  for (const run of lower.match(RUN) || [])
    found.push(...(IS_CJK.test(run) ? bigrams(run) : [run]))
  return found
}

function terms(query) {
  const found = []
  for (const run of normalize(query).match(RUN) || []) {
    if (!IS_CJK.test(run)) {
      found.push({ value: run, latin: true })
      continue
    }
    const parts = ONLY_HIRAGANA.test(run) ? [run] : run.split(HIRAGANA).filter(Boolean)
    for (const part of parts) found.push({ value: part, latin: false })
  }
  return found
}

function build({ docs, families: groups }) {
  families = new Map()
  for (const group of groups) for (const word of group) families.set(word, group)
  pages = docs.map(doc => ({ ...doc, lowerTitle: normalize(doc.title), lowerText: normalize(doc.text) }))
  postings = new Map()
  pages.forEach((page, number) => {
    for (const token of tokens(`${page.lowerTitle} ${page.lowerText}`)) {
      let set = postings.get(token)
      if (!set) postings.set(token, set = new Set())
      set.add(number)
    }
  })
  words = [...postings.keys()].filter(token => !IS_CJK.test(token)).sort()
}

function union(sets) {
  const all = new Set()
  for (const set of sets) for (const number of set) all.add(number)
  return all
}

function intersect(a, b) {
  return new Set([...a].filter(number => b.has(number)))
}

// The words a term matches in the text, and the pages that may hold it.
function candidates(term) {
  if (term.latin) {
    let low = 0, high = words.length
    while (low < high) {
      const middle = (low + high) >> 1
      if (words[middle] < term.value) low = middle + 1
      else high = middle
    }
    const matched = new Set()
    for (let i = low; i < words.length && words[i].startsWith(term.value); i++)
      for (const word of families.get(words[i]) || [words[i]]) matched.add(word)
    return { words: [...matched], pages: union([...matched].map(word => postings.get(word) || new Set())) }
  }
  // A one-character word: any page whose text holds it (it may only end a bigram).
  if (term.value.length === 1) return { words: [term.value], pages: new Set(pages.keys()) }
  let found = null
  for (const gram of bigrams(term.value)) {
    const set = postings.get(gram) || new Set()
    found = found === null ? set : intersect(found, set)
  }
  return { words: [term.value], pages: found }
}

function count(haystack, needle) {
  let total = 0
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) total++
  return total
}

function escapeHTML(value) {
  return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
}

function highlight(original, lower, values) {
  // Lower-casing keeps offsets for everything an index holds but a few rare letters; without
  // that guarantee, the text is shown unmarked rather than marked in the wrong place.
  if (original.length !== lower.length) return escapeHTML(original)
  const marks = []
  for (const value of values)
    for (let at = lower.indexOf(value); at !== -1; at = lower.indexOf(value, at + value.length))
      marks.push([at, at + value.length])
  marks.sort((a, b) => a[0] - b[0])
  let html = "", cursor = 0
  for (const [start, end] of marks) {
    if (start < cursor) continue
    html += escapeHTML(original.slice(cursor, start)) + "<mark>" + escapeHTML(original.slice(start, end)) + "</mark>"
    cursor = end
  }
  return html + escapeHTML(original.slice(cursor))
}

function snippet(page, values) {
  const hits = values.map(value => page.lowerText.indexOf(value)).filter(at => at >= 0)
  const first = hits.length ? Math.min(...hits) : 0
  const start = Math.max(0, first - SNIPPET / 4)
  const end = Math.min(page.text.length, start + SNIPPET)
  const body = highlight(page.text.slice(start, end), page.lowerText.slice(start, end), values)
  return `<p>${start > 0 ? "…" : ""}${body}${end < page.text.length ? "…" : ""}</p>`
}

function search(query) {
  const wanted = terms(query)
  if (!wanted.length) return { items: [] }
  let found = null
  for (const term of wanted) {
    const match = candidates(term)
    const matching = [...match.pages].filter(number => {
      const page = pages[number]
      return term.latin || page.lowerText.includes(term.value) || page.lowerTitle.includes(term.value)
    })
    found = found === null ? new Set(matching) : intersect(found, new Set(matching))
    // A short prefix matches many words: rank and mark by the prefix itself then.
    term.words = match.words.length <= MAX_MARKED_WORDS ? match.words : [term.value]
    term.rarity = Math.log(1 + pages.length / Math.max(1, matching.length))
  }
  const values = wanted.flatMap(term => term.words)
  const scored = [...found].map(number => {
    const page = pages[number]
    let score = 0
    for (const term of wanted) {
      let inTitle = 0, inText = 0
      for (const word of term.words) {
        inTitle += count(page.lowerTitle, word)
        inText += count(page.lowerText, word)
      }
      score += term.rarity * (TITLE_WEIGHT * inTitle + Math.min(20, inText))
    }
    return { page, score }
  })
  scored.sort((a, b) => b.score - a.score || a.page.location.localeCompare(b.page.location))
  const matched = Object.fromEntries(wanted.map(term => [term.value, true]))
  return {
    items: scored.slice(0, MAX_RESULTS).map(({ page, score }) => [{
      location: page.location,
      title: highlight(page.title, page.lowerTitle, values),
      text: snippet(page, values),
      score,
      terms: matched,
    }]),
  }
}

async function load() {
  const response = await fetch(new URL("../../search/kb_index.json.gz", self.location.href))
  if (!response.ok) throw new Error(`search index: HTTP ${response.status}`)
  const bytes = new Uint8Array(await response.arrayBuffer())
  // A server that sends the file with Content-Encoding: gzip has inflated it already.
  const gzipped = bytes[0] === 0x1f && bytes[1] === 0x8b
  const stream = new Blob([bytes]).stream()
  const text = await new Response(gzipped ? stream.pipeThrough(new DecompressionStream("gzip")) : stream).text()
  return JSON.parse(text)
}

addEventListener("message", async event => {
  const message = event.data
  if (message.type === SETUP) {
    build(await load())
    postMessage({ type: READY })
  } else if (message.type === QUERY) {
    postMessage({ type: RESULT, data: search(message.data) })
  }
})
