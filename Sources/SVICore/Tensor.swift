/// A dense tensor in C order on one 64-byte-aligned allocation. Video tensors are
/// `[T][C][H][W]` (DESIGN §2): frame `t` is one contiguous `C·H·W` block.
///
/// `Tensor` (float32) holds videos, network activations and everything stored on disk;
/// `Tensor64` holds the data-consistency iterates: CG on AᵀA is ill-conditioned enough that
/// float32 vectors drift from the reference's float64 solve within five steps (8% on
/// `fixtures/temporal-cg`), so the solve runs in float64 (DESIGN §2: reductions in float64).
///
/// A class (not a value type) on purpose: tensors are large, are handed to kernels as raw
/// pointers and are reused across diffusion steps without copies.
public final class DenseTensor<Scalar: BinaryFloatingPoint>: @unchecked Sendable {
    public private(set) var shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Scalar>

    public init(shape: [Int], zeroed: Bool = true) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let bytes = max(1, count) * MemoryLayout<Scalar>.stride
        let raw = BufferPool.take(bytes: bytes)
        // Zero as bytes (0.0 is all-zero bits in float32 and float64): a memset, where the
        // generic `initialize(repeating:)` copied element by element through the type's value
        // witness — this init is not specialised for its callers.
        if zeroed { raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
        self.data = raw.bindMemory(to: Scalar.self, capacity: max(1, count))
    }

    public convenience init(shape: [Int], values: [Scalar]) {
        self.init(shape: shape, zeroed: false)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// A converted copy (float32 ↔ float64).
    public convenience init<Other>(converting other: DenseTensor<Other>) {
        self.init(shape: other.shape, zeroed: false)
        let src = other.data, dst = data
        Parallel.forEachChunk(count) { s, e in for i in s..<e { dst[i] = Scalar(src[i]) } }
    }

    deinit { BufferPool.give(UnsafeMutableRawPointer(data), bytes: max(1, count) * MemoryLayout<Scalar>.stride) }

    /// Number of frames (first dimension).
    public var frames: Int { shape.first ?? 0 }
    /// Elements per frame (product of all but the first dimension).
    public var frameSize: Int { shape.count <= 1 ? 1 : shape.dropFirst().reduce(1, *) }

    @inline(__always) public func frame(_ t: Int) -> UnsafeMutablePointer<Scalar> { data + t * frameSize }

    public subscript(i: Int) -> Scalar {
        get { data[i] }
        set { data[i] = newValue }
    }

    public var array: [Scalar] { Array(UnsafeBufferPointer(start: data, count: count)) }

    public func copy() -> DenseTensor<Scalar> {
        let t = DenseTensor<Scalar>(shape: shape, zeroed: false)
        t.data.update(from: data, count: count)
        return t
    }

    /// Reinterprets the same elements under a new shape with the same element count.
    public func reshape(_ newShape: [Int]) {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        shape = newShape
    }

    public func fill(_ v: Scalar) { Kernels.fill(data, v, count) }
    public func copy(from other: DenseTensor<Scalar>) {
        precondition(other.count == count)
        Kernels.copy(data, other.data, count)
    }
    /// Element-wise conversion from a tensor of the same size in the other precision.
    public func convert<Other>(from other: DenseTensor<Other>) {
        precondition(other.count == count)
        let src = other.data, dst = data
        Parallel.forEachChunk(count) { s, e in for i in s..<e { dst[i] = Scalar(src[i]) } }
    }
}

public typealias Tensor = DenseTensor<Float>
public typealias Tensor64 = DenseTensor<Double>
