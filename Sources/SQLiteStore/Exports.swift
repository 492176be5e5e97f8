// The store-neutral values (SQLValue, Row, NamedQuery, Migration) come with this module, so code that imports
// SQLiteStore sees them as before.
@_exported import StoreCore
