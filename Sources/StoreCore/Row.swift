/// One result row, copied out of the statement so it outlives the next step.
public struct Row: Sendable {
    public let columns: [String]
    public let values: [SQLValue]

    public init(columns: [String], values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    public subscript(_ index: Int) -> SQLValue { values[index] }

    /// The value of the named column; `.null` when the query has no such column.
    public subscript(_ name: String) -> SQLValue {
        guard let index = columns.firstIndex(of: name) else { return .null }
        return values[index]
    }

    /// The index of the named column, looked for from `hint` onwards first: a caller reading columns in the
    /// order the query returns them finds each at the first comparison instead of scanning from the start.
    public func index(of name: String, from hint: Int) -> Int? {
        if hint < columns.count, let found = columns[hint...].firstIndex(of: name) { return found }
        return columns[..<min(hint, columns.count)].firstIndex(of: name)
    }

    public func string(_ name: String) -> String? { self[name].string }
    public func int(_ name: String) -> Int? { self[name].int }
    public func int64(_ name: String) -> Int64? { self[name].int64 }
    public func double(_ name: String) -> Double? { self[name].double }
    public func bool(_ name: String) -> Bool { (self[name].int64 ?? 0) != 0 }
}
