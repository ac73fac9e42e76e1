# Puts freshly measured sections into bench/RESULTS.md without losing the ones this run did
# not measure (the lint comparison, notes measured by hand). A section runs from a "## "
# heading to the next; its key is the heading's first word ("(g)", "Lint:").
#   awk -v order=old -f bench/lib/sections.awk OLD NEW   OLD's order, NEW's sections in place
#                                                      (a partial run: BENCH_ONLY=scale)
#   awk -v order=new -f bench/lib/sections.awk OLD NEW   NEW's order, then OLD's sections that
#                                                      NEW lacks (a full run)
# Text before the first heading comes from the file whose order is kept.
function key(line) { split(line, w, " "); return w[2] }
FNR == 1 { f = FILENAME == ARGV[1] ? "old" : "new"; cur = f SUBSEP "" }
/^## / {
    cur = f SUBSEP key($0)
    seen[cur] = 1
    keys[f, ++n[f]] = key($0)
}
{ text[cur] = text[cur] $0 "\n" }
END {
    other = order == "old" ? "new" : "old"
    printf "%s", text[order, ""]
    for (i = 1; i <= n[order]; i++) {
        k = keys[order, i]
        t = ((other, k) in seen && order == "old") ? text[other, k] : text[order, k]
        # A section put in from NEW keeps the blank line before the next heading.
        printf "%s%s", t, (t ~ /\n\n$/ || i == n[order]) ? "" : "\n"
    }
    if (order == "new")
        for (i = 1; i <= n["old"]; i++)
            if (!(("new", keys["old", i]) in seen))
                printf "\n%s", text["old", keys["old", i]]
}
