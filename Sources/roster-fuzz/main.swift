import FuzzTargets
import Foundation

// roster-fuzz TARGET [libFuzzer flags] — built with -sanitize=fuzzer -DFUZZING by `make fuzz`, it runs libFuzzer on
// one parser. Built normally, `roster-fuzz TARGET FILE...` replays inputs through the target (a crash reproducer).
let arguments = CommandLine.arguments
guard arguments.count >= 2, let target = FuzzTargets.all[arguments[1]] else {
    FileHandle.standardError.write(Data("usage: roster-fuzz \(FuzzTargets.all.keys.sorted().joined(separator: "|")) [FILE...]\n".utf8))
    exit(2)
}
nonisolated(unsafe) var selected: @Sendable ([UInt8]) -> Void = target
selected = target

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

// libFuzzer reads its own flags; the target's name is not one of them.
var rest = [arguments[0]] + arguments.dropFirst(2)
var cStrings: [UnsafeMutablePointer<CChar>?] = rest.map { strdup($0) } + [nil]
var argc = Int32(rest.count)
let status = cStrings.withUnsafeMutableBufferPointer { buffer -> Int32 in
    var argv = buffer.baseAddress
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        selected(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
    }
}
exit(status)
#else
for path in arguments.dropFirst(2) {
    guard let data = FileManager.default.contents(atPath: path) else { continue }
    selected(Array(data))
}
print("roster-fuzz: replayed \(arguments.count - 2) input(s) through \(arguments[1])")
#endif
