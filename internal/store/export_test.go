package store

// MigrateWith runs Migrate with another table of migrations (tests of the
// machinery: today's table has one step).
var MigrateWith = migrate
