// kb: sort any table by clicking a column header; filter the rows of a listing as you type.
// Listings are marked by the class kb-filter on their heading (kb/site/pages.py). Opened from
// disk (file://), a link to a page's folder would show a file listing: it is sent to index.html.

function cellValue(row, column) {
  const text = row.cells[column] ? row.cells[column].textContent.trim() : ""
  const number = Number(text)
  return text !== "" && !Number.isNaN(number) ? number : text.toLowerCase()
}

function makeSortable(table) {
  const body = table.tBodies[0]
  if (!body || !table.tHead) return
  Array.from(table.tHead.rows[0].cells).forEach((header, column) => {
    header.classList.add("kb-sortable")
    header.addEventListener("click", () => {
      const ascending = header.getAttribute("aria-sort") !== "ascending"
      for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort")
      header.setAttribute("aria-sort", ascending ? "ascending" : "descending")
      const rows = Array.from(body.rows)
      rows.sort((a, b) => {
        const x = cellValue(a, column), y = cellValue(b, column)
        const order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : typeof x === "number" ? -1 : 1
        return ascending ? order : -order
      })
      body.append(...rows)
    })
  })
}

function addFilter(heading) {
  const table = document.querySelector(".md-content table")
  if (!table || !table.tBodies[0]) return
  const box = document.createElement("input")
  box.type = "search"
  box.className = "kb-filter-box"
  box.placeholder = "Filter this page"
  box.setAttribute("aria-label", "Filter the rows of this page")
  box.addEventListener("input", () => {
    const wanted = box.value.normalize("NFKC").toLowerCase().trim()
    for (const row of table.tBodies[0].rows)
      row.hidden = wanted !== "" && !row.textContent.normalize("NFKC").toLowerCase().includes(wanted)
  })
  heading.after(box)
}

document.querySelectorAll(".md-content table").forEach(makeSortable)
document.querySelectorAll(".md-content .kb-filter").forEach(addFilter)

if (location.protocol === "file:")
  for (const anchor of document.querySelectorAll("a[href]")) {
    const href = anchor.getAttribute("href")
    if (!/^[a-z]+:/i.test(href) && /(^|\/)(\.\.?)?$/.test(href.split("#")[0]) && !href.startsWith("#"))
      anchor.setAttribute("href", href.replace(/^([^#]*?)\/?(#|$)/, (_, path, rest) => `${path ? path + "/" : ""}index.html${rest}`))
  }
