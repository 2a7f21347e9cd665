// Package sigma evaluates Sigma detection rules (SigmaHQ's
// sigma-specification) on CloudTrail records, one event at a time.
//
// Load reads rules as PGTRAIL_RULES names them and keeps those for
// CloudTrail (logsource product aws, service cloudtrail); Parse reads one
// file. A rule pgtrail cannot evaluate as written is refused, with its file
// and the construct named (Set.Refused): a correlation rule, an unknown
// modifier, a field CloudTrail records do not have, a condition that does
// not parse or names nothing. A rule that silently never matches would be
// worse than one that does not load.
//
// Set.Match evaluates a compiled Set on one event: its eventSource and
// eventName select the candidate rules (most events are candidates for
// none); a rule that names no eventName is skipped when the record lacks
// its needles (needle.go), the members it needs found by a byte search;
// and the record's JSON is read only as far as the remaining rules need,
// each object on their paths once (objects.go).
//
// The detection semantics follow the rules specification and its modifiers
// appendix (v2.1), and pySigma where the specification is silent:
//
//   - Strings match whole and ignore case unless cased; * and ? are
//     wildcards, \ escapes them and itself. A list of values is their OR,
//     or their AND under all; a map is the AND of its fields; a list of
//     maps is their OR.
//   - Field names are case-sensitive paths into the record: dots separate
//     nested keys (userIdentity.sessionContext.sessionIssuer.type), and a
//     key holding dots matches too. A path continues into each element of
//     an array of objects, as a search engine indexes them.
//   - A field holding an object is matched as the object's JSON text (what
//     requestParameters|contains means). A field holding an array is matched
//     element by element, and matches if any element does: that is how the
//     search engines that Sigma rules are written for (Elasticsearch, Splunk)
//     treat multi-valued fields, and the specification gives no other
//     meaning. So contains '*' does not match an empty array.
//   - null matches a field that is absent or holds null (or only nulls, or
//     an empty array); exists tests presence, whatever the value. Other
//     values never match null.
//   - A number matches a JSON number of equal value, or the same text; a
//     boolean matches a JSON boolean or the string true or false.
//   - Keyword searches (values without a field) look anywhere in the
//     record's JSON text, ignoring case, as pySigma's matcher does.
//   - Modifiers: contains, startswith, endswith, all, cased, neq, re with
//     i, m and s, cidr, exists, fieldref (with contains, startswith,
//     endswith, cased), lt, lte, gt, gte, base64, base64offset, utf16le,
//     utf16be, utf16, wide (before base64 or base64offset), windash, and
//     minute, hour, day, week, month, year (UTC). expand is refused: it
//     needs placeholder values pgtrail has no source for.
//   - re is RE2 (Go's regexp): the specification's subset of PCRE, but a
//     rule using backreferences or lookaround is refused.
//   - Conditions: and, or, not, parentheses, 1 of, any of, all of, them;
//     a list of conditions is their OR.
package sigma
