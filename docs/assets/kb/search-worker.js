// kb's search worker behind Material for MkDocs' search box: Japanese and English.
//
// Material lets a site replace its search worker: the page sends SETUP (the index settings)
// and QUERY (what was typed), the worker answers READY and RESULT (pages grouped for display).
// docs/overrides/main.html points Material at this file. The index (kb/site/search_index.py) is
// inverted and cut into parts under search/kb/, each a script calling kbSearchPart(name, data);
// a query reads only the parts of its tokens, so search stays fast at 10,000 papers.
//
// The same file runs two ways. As a worker (the site served over http), it reads parts with
// importScripts. In a page opened from disk (file://), where Chromium refuses workers and fetch,
// main.html loads it with a script tag and hands Material a PageWorker in place of a Worker: the
// same messages, answered in the page, parts read with script tags.
//
// Tokens follow kb/search.py so the site finds what `kb search` finds: lower case; a run of
// CJK characters becomes overlapping bigrams (物体検出 -> 物体 体検 検出); a Latin word is one
// token. Every query word must match: a Japanese word as a contiguous phrase (its trigrams are all
// on the page: 鳥瞰図 is one trigram); a Latin word as a prefix of a word on the page, or of a word
// of the same family (the index groups words by kb's stemmer, so detector finds detection).
// Particles split a Japanese query: 検出の精度 asks for 検出 and 精度. A query is expanded with the
// bilingual glossary (the glossary part) as kb search expands it: 物体検出 also asks for "object detection".

(function (scope) {
  const SETUP = 0, READY = 1, QUERY = 2, RESULT = 3
  const CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u30fc"
  const RUN = new RegExp(`[${CJK}]+|[a-z0-9]+`, "g")
  const IS_CJK = new RegExp(`^[${CJK}]`)
  const HIRAGANA = /[\u3040-\u309f]+/g
  const ONLY_HIRAGANA = /^[\u3040-\u309f]+$/
  const TITLE_WEIGHT = 10
  const MAX_RESULTS = 100
  const MAX_MARKED_WORDS = 20

  const parts = new Map()        // part name -> its data, once read
  const waiting = new Map()      // part name -> the promise of reading it
  let meta = null                // {docs, docs_per_part, cjk_parts, latin: [prefixes]}
  let glossary = null            // glossary name -> the names of its concepts (built from the glossary part)
  const SPAN = 4                 // the most query words one glossary name spans ("3d object detection")

  function normalize(value) {
    return value.normalize("NFKC").toLowerCase()
  }

  function terms(query) {
    const found = []
    for (const run of normalize(query).match(RUN) || []) {
      if (!IS_CJK.test(run)) {
        found.push({ value: run, latin: true })
        continue
      }
      const pieces = ONLY_HIRAGANA.test(run) ? [run] : run.split(HIRAGANA).filter(Boolean)
      for (const piece of pieces) found.push({ value: piece, latin: false })
    }
    return found
  }

  // kb/site/search_index.py's cjk_part: which CJK part holds a token.
  function cjkPart(token) {
    let value = 0
    for (let i = 0; i < token.length; i++) value = (Math.imul(value, 31) + token.charCodeAt(i)) >>> 0
    return `c${value % meta.cjk_parts}`
  }

  // Read parts (in parallel from disk, where each is a script tag); resolves when all are in.
  function read(names, root, load) {
    return Promise.all(names.map(name => {
      if (parts.has(name)) return null
      if (!waiting.has(name)) waiting.set(name, load(new URL(`${name}.js`, root).href))
      return waiting.get(name)
    }))
  }

  // A posting list as Map doc -> {text, title} counts (kb/site/search_index.py's _postings).
  function decode(flat, into = new Map()) {
    let doc = 0
    for (let i = 0; i < flat.length; i += 2) {
      doc += flat[i]
      const code = flat[i + 1], held = into.get(doc)
      const text = code % 32, title = Math.floor(code / 32)
      if (held) { held.text += text; held.title += title } else into.set(doc, { text, title })
    }
    return into
  }

  // The words a Latin term matches (its prefix, widened to word families), and their pages.
  async function latin(term, fetchParts) {
    const prefixes = term.value.length >= 2 ? [term.value.slice(0, 2)].filter(p => meta.latin.includes(p))
      : meta.latin.filter(p => p.startsWith(term.value))
    await fetchParts(prefixes.map(p => `l-${p}`))
    const matched = new Set()
    for (const prefix of prefixes)
      for (const word of Object.keys(parts.get(`l-${prefix}`).words))
        if (word.startsWith(term.value))
          for (const member of parts.get(`l-${prefix}`).families[word] || [word]) matched.add(member)
    const others = [...new Set([...matched].map(w => w.slice(0, 2)))].filter(p => meta.latin.includes(p))
    await fetchParts(others.map(p => `l-${p}`))
    const pages = new Map()
    for (const word of matched) {
      const part = parts.get(`l-${word.slice(0, 2)}`)
      if (part && part.words[word]) decode(part.words[word], pages)
    }
    return { words: [...matched].sort(), pages }
  }

  // The pages holding a Japanese term, as kb search finds them: a one-character term is a prefix
  // (every bigram it starts, or the character standing alone: the index's token c*); a
  // two-character one is one bigram; a longer one needs each of its trigrams (counts: the rarest
  // trigram's).
  async function japanese(term, fetchParts) {
    const value = term.value
    if (value.length === 1) {
      const token = `${value}*`                  // the index's list of the pages where it starts a bigram
      await fetchParts([cjkPart(token)])
      return { words: [value], pages: decode(parts.get(cjkPart(token))[token] || []) }
    }
    const grams = value.length === 2 ? [value] : [...Array(value.length - 2).keys()].map(i => value.slice(i, i + 3))
    await fetchParts([...new Set(grams.map(cjkPart))])
    let pages = null
    for (const gram of grams) {
      const found = decode(parts.get(cjkPart(gram))[gram] || [])
      if (pages === null) { pages = found; continue }
      for (const [doc, counts] of pages) {
        const other = found.get(doc)
        if (!other) pages.delete(doc)
        else { counts.text = Math.min(counts.text, other.text); counts.title = Math.min(counts.title, other.title) }
      }
    }
    return { words: [value], pages }
  }

  function escapeHTML(value) {
    return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
  }

  function highlight(original, values) {
    // Lower-casing keeps offsets for everything an index holds but a few rare letters; without
    // that guarantee, the text is shown unmarked rather than marked in the wrong place.
    const lower = normalize(original)
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

  // kb/search.py's expand_terms, over the glossary part (kb/glossary.py's concepts): query words
  // that form a glossary name become one group whose forms are its concept's names, longest
  // first; a Japanese word written as glossary names one after another becomes those names. A
  // form is a list of terms that must all match (a phrase in kb search: here its words).
  function synonyms() {
    if (!glossary) {
      glossary = new Map()
      for (const names of parts.get("glossary") || [])
        for (const name of names) {
          if (!glossary.has(name)) glossary.set(name, new Set())
          for (const other of names) glossary.get(name).add(other)
        }
    }
    return glossary
  }

  // The glossary names a run of query terms stands for; a Latin word also by its word family
  // (kb search matches glossary names by their stems: detections -> detection).
  async function namesOf(run, fetchParts) {
    const index = synonyms(), key = run.map(term => term.value).join(" "), names = new Set(index.get(key) || [])
    if (run.length === 1 && run[0].latin && meta.latin.includes(key.slice(0, 2))) {
      await fetchParts([`l-${key.slice(0, 2)}`])
      for (const member of parts.get(`l-${key.slice(0, 2)}`).families[key] || [])
        for (const name of index.get(member) || []) names.add(name)
    }
    return names
  }

  // A Japanese run cut at the glossary names it holds, longest first from each position (点群物体検出
  // is 点群 and 物体検出; 畳み込み stays whole though it holds kana), the rest as terms() cuts it.
  function cutAtNames(run) {
    const index = synonyms(), found = []
    let rest = "", k = 0
    while (k < run.length) {
      let end = run.length
      while (end > k + 1 && !index.has(run.slice(k, end))) end--
      if (end === k + 1) { rest += run[k]; k += 1; continue }
      found.push(...terms(rest), { value: run.slice(k, end), latin: false })
      rest = ""
      k = end
    }
    return [...found, ...terms(rest)]
  }

  async function expand(query, fetchParts) {
    const wanted = []
    for (const run of normalize(query).match(RUN) || []) wanted.push(...(IS_CJK.test(run) ? cutAtNames(run) : terms(run)))
    const groups = []
    for (let i = 0; i < wanted.length;) {
      let span = 0
      for (let j = Math.min(wanted.length, i + SPAN); j > i && !span; j--) {
        const run = wanted.slice(i, j), names = await namesOf(run, fetchParts)
        if (!names.size) continue
        const raw = run.map(term => term.value).join(" ")
        groups.push({ value: raw, forms: [run, ...[...names].filter(name => name !== raw).sort().map(terms)] })
        span = j - i
      }
      if (!span) groups.push({ value: wanted[i].value, forms: [[wanted[i]]] })
      i += span || 1
    }
    return groups
  }

  // The pages where every term of a form matches (counts: its rarest term's), and the words to mark.
  async function matchForm(form, fetchParts) {
    let pages = null
    const words = []
    for (const term of form) {
      const match = term.latin ? await latin(term, fetchParts) : await japanese(term, fetchParts)
      words.push(...(match.words.length <= MAX_MARKED_WORDS ? match.words : [term.value]))
      if (pages === null) { pages = match.pages; continue }
      for (const [doc, counts] of pages) {
        const other = match.pages.get(doc)
        if (!other) pages.delete(doc)
        else { counts.text = Math.min(counts.text, other.text); counts.title = Math.min(counts.title, other.title) }
      }
    }
    return { pages: pages || new Map(), words }
  }

  async function search(query, fetchParts, locate) {
    const wanted = await expand(query, fetchParts)
    if (!wanted.length) return { items: [] }
    let found = null
    for (const group of wanted) {
      // A group matches where any of its forms does; its counts add up as kb search's OR does.
      group.pages = new Map()
      group.words = []
      for (const form of group.forms) {
        const match = await matchForm(form, fetchParts)
        group.words.push(...match.words)
        for (const [doc, counts] of match.pages) {
          const held = group.pages.get(doc)
          if (held) { held.text += counts.text; held.title += counts.title } else group.pages.set(doc, { ...counts })
        }
      }
      group.rarity = Math.log(1 + meta.docs / Math.max(1, group.pages.size))
      found = found === null ? [...group.pages.keys()] : found.filter(doc => group.pages.has(doc))
    }
    const scored = found.map(doc => {
      let score = 0
      for (const group of wanted) {
        const { text, title } = group.pages.get(doc)
        score += group.rarity * (TITLE_WEIGHT * title + Math.min(20, text))
      }
      return { doc, score }
    })
    scored.sort((a, b) => b.score - a.score || a.doc - b.doc)
    const top = scored.slice(0, MAX_RESULTS)
    await fetchParts([...new Set(top.map(({ doc }) => `d${Math.floor(doc / meta.docs_per_part)}`))])
    const values = [...new Set(wanted.flatMap(group => group.words))]
    const matched = Object.fromEntries(wanted.map(group => [group.value, true]))
    return {
      items: top.map(({ doc, score }) => {
        const [location, title, excerpt] = parts.get(`d${Math.floor(doc / meta.docs_per_part)}`)[doc % meta.docs_per_part]
        return [{ location: locate(location), title: highlight(title, values), text: `<p>${highlight(excerpt, values)}</p>`, score, terms: matched }]
      }),
    }
  }

  // Answers Material's messages; `reply` posts one back, `load(url)` reads a part's script,
  // `locate` turns a page's location into the link a result gets.
  function serve(root, load, reply, locate = location => location) {
    const fetchParts = names => read(names, root, load)
    let queue = Promise.resolve()                 // one query at a time, answered in order
    return message => {
      if (message.type === SETUP) {
        queue = queue.then(() => fetchParts(["meta", "glossary"])).then(() => reply({ type: READY }))
      } else if (message.type === QUERY) {
        queue = queue.then(() => search(message.data, fetchParts, locate)).then(data => reply({ type: RESULT, data }))
      }
    }
  }

  scope.kbSearchPart = (name, data) => {
    parts.set(name, data)
    if (name === "meta") meta = data
  }

  if (typeof WorkerGlobalScope !== "undefined" && scope instanceof WorkerGlobalScope) {
    const root = new URL("../../search/kb/", scope.location.href)
    const handle = serve(root, async url => scope.importScripts(url), message => scope.postMessage(message))
    scope.addEventListener("message", event => handle(event.data))
    return
  }

  // In a page: what main.html gives Material instead of a Worker when the site is opened from disk.
  function script(url) {
    return new Promise((resolve, reject) => {
      const tag = Object.assign(document.createElement("script"), { src: url })
      tag.onload = () => { tag.remove(); resolve() }
      tag.onerror = () => reject(new Error(`search index part missing: ${url}`))
      document.head.append(tag)
    })
  }

  scope.KbPageWorker = class extends EventTarget {
    constructor(url) {
      super()
      const root = new URL("../../search/kb/", new URL(url, location.href))
      // From disk a folder's URL opens a file listing, not its page: results link to index.html.
      this.handle = serve(root, script, data => this.dispatchEvent(new MessageEvent("message", { data })),
                          location => location === "" || location.endsWith("/") ? `${location}index.html` : location)
    }

    postMessage(message) {
      this.handle(message)
    }

    terminate() {}
  }
})(self)
