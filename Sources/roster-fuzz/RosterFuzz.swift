import Foundation
import FuzzTargets

#if FUZZING
// Built by `make fuzz` with -sanitize=fuzzer: libFuzzer's driver calls this entry point; the parser comes from
// ROSTER_FUZZ_TARGET. SwiftPM links an executable's entry point under the name `<product>_main`, so that is where
// libFuzzer's driver is started.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("roster_fuzz_main")
public func rosterFuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector) { data, size in rosterFuzzOneInput(data, size) }
}

nonisolated(unsafe) private var selected: (@Sendable ([UInt8]) -> Void)?

@_cdecl("LLVMFuzzerTestOneInput")
public func rosterFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    if selected == nil {
        let name = ProcessInfo.processInfo.environment["ROSTER_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTargets.all[name] else {
            FileHandle.standardError.write(Data("roster-fuzz: set ROSTER_FUZZ_TARGET to one of \(FuzzTargets.all.keys.sorted())\n".utf8))
            exit(2)
        }
        selected = target
    }
    selected?(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
#else
/// Built normally: `roster-fuzz TARGET FILE...` replays inputs through one parser (a crash reproducer).
@main
struct RosterFuzz {
    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2, let target = FuzzTargets.all[arguments[1]] else {
            FileHandle.standardError.write(Data("usage: roster-fuzz \(FuzzTargets.all.keys.sorted().joined(separator: "|")) [FILE...]\n".utf8))
            exit(2)
        }
        for path in arguments.dropFirst(2) {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            target(Array(data))
        }
        print("roster-fuzz: replayed \(arguments.count - 2) input(s) through \(arguments[1])")
    }
}
#endif
