package store

// StoredText is pgJSON for the tests: the text a chunk's data is stored
// (and hashed) as.
var StoredText = pgJSON
