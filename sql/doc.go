// Package sql holds what every shortfleet component shares about the
// database: the schema as golang-migrate migrations embedded in the binary,
// the code that applies them, and the queries more than one binary runs.
//
// The schema lives in migrations/ as numbered up and down files. A migration
// once released is never edited: add the next number.
package sql
