/// The shape of one frame, `[C][H][W]`.
public struct FrameShape: Equatable, Sendable, Codable, CustomStringConvertible {
    public var channels: Int, height: Int, width: Int
    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels; self.height = height; self.width = width
    }
    public var count: Int { channels * height * width }
    public var plane: Int { height * width }
    public var description: String { "\(channels)×\(height)×\(width)" }
}
