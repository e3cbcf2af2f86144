/// A dense float32 tensor in C order on one 64-byte-aligned allocation. Video tensors are
/// `[T][C][H][W]` (DESIGN §2): frame `t` is one contiguous `C·H·W` block.
///
/// A class (not a value type) on purpose: tensors are large, are handed to kernels as raw
/// pointers and are reused across diffusion steps without copies.
public final class Tensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>

    public init(shape: [Int], zeroed: Bool = true) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
        self.data = raw.bindMemory(to: Float.self, capacity: max(1, count))
        if zeroed { data.initialize(repeating: 0, count: count) }
    }

    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape: shape, zeroed: false)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    deinit { data.deallocate() }

    /// Number of frames (first dimension).
    public var frames: Int { shape.first ?? 0 }
    /// Elements per frame (product of all but the first dimension).
    public var frameSize: Int { shape.count <= 1 ? 1 : shape.dropFirst().reduce(1, *) }

    @inline(__always) public func frame(_ t: Int) -> UnsafeMutablePointer<Float> { data + t * frameSize }

    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    public func copy() -> Tensor {
        let t = Tensor(shape: shape, zeroed: false)
        t.data.update(from: data, count: count)
        return t
    }

    /// Reinterprets the same elements under a new shape with the same element count.
    public func reshape(_ newShape: [Int]) {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        shape = newShape
    }

    public func fill(_ v: Float) { Kernels.fill(data, v, count) }
    public func copy(from other: Tensor) {
        precondition(other.count == count)
        Kernels.copy(data, other.data, count)
    }
}
