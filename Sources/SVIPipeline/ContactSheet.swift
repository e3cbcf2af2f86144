import Foundation
import SVICore

/// Chosen frames of several videos side by side in one image (`svi compare`): one row per
/// video, one column per frame, every row scaled to the largest frame size by pixel
/// replication (so a low-resolution measurement shows its real pixels), a 2-pixel white
/// gutter between tiles, and — unless told not to — row labels on the left and frame numbers
/// above the columns in a 5×7 font scaled with the tiles.
package enum ContactSheet {
    package struct Row {
        /// The file the video came from (named in errors).
        package let path: String
        package let label: String
        /// RGB frames [T][3][H][W] in [0,1].
        package let video: Tensor
        package init(path: String, label: String, video: Tensor) { self.path = path; self.label = label; self.video = video }
    }

    /// Up to four frames evenly spaced over `frames`.
    package static func defaultColumns(frames: Int) -> [Int] {
        let n = min(4, frames)
        return (0..<n).map { n == 1 ? 0 : $0 * (frames - 1) / (n - 1) }
    }

    /// The sheet, [1][3][H][W] with even H and W (what an encoder of yuv420p also accepts).
    /// Every row must be RGB, hold every frame of `columns`, and have a frame size that
    /// divides the largest one.
    package static func render(_ rows: [Row], columns: [Int], labels: Bool) throws -> Tensor {
        precondition(!rows.isEmpty && !columns.isEmpty)
        for r in rows where r.video.shape.count != 4 || r.video.shape[1] != 3 {
            throw SVIError.file(r.path, "expected RGB frames [T][3][H][W], got shape \(r.video.shape)")
        }
        let tileH = rows.map { $0.video.shape[2] }.max()!, tileW = rows.map { $0.video.shape[3] }.max()!
        for r in rows where tileH % r.video.shape[2] != 0 || tileW % r.video.shape[3] != 0 {
            throw SVIError.file(r.path, "frame size \(r.video.shape[3])x\(r.video.shape[2]) does not divide \(tileW)x\(tileH); give videos whose sizes are integer ratios")
        }
        let shown = rows.map { String($0.label.prefix(28)) }
        let scale = max(1, min(4, tileH / 48)), pad = 3 * scale, gutter = 2
        let labelW = labels ? (shown.map { BitmapFont.width($0, scale: scale) }.max() ?? 0) + 2 * pad : 0
        let headerH = labels ? BitmapFont.glyphHeight * scale + 2 * pad : 0
        var width = labelW + columns.count * tileW + (columns.count - 1) * gutter
        var height = headerH + rows.count * tileH + (rows.count - 1) * gutter
        width += width % 2; height += height % 2
        let sheet = Tensor(shape: [1, 3, height, width], zeroed: false)
        sheet.data.initialize(repeating: 1, count: sheet.count)
        if labels {
            for (c, f) in columns.enumerated() {
                let long = "frame \(f)"
                let text = BitmapFont.width(long, scale: scale) <= tileW ? long : "\(f)"
                let x = labelW + c * (tileW + gutter) + (tileW - BitmapFont.width(text, scale: scale)) / 2
                BitmapFont.draw(text, into: sheet.data, channels: 3, height: height, width: width, x: x, y: pad, scale: scale, value: 0)
            }
            for (r, text) in shown.enumerated() {
                let y = headerH + r * (tileH + gutter) + (tileH - BitmapFont.glyphHeight * scale) / 2
                BitmapFont.draw(text, into: sheet.data, channels: 3, height: height, width: width, x: pad, y: y, scale: scale, value: 0)
            }
        }
        for (r, row) in rows.enumerated() {
            for (c, f) in columns.enumerated() {
                place(row.video, frame: f, into: sheet, top: headerH + r * (tileH + gutter), left: labelW + c * (tileW + gutter),
                      tileHeight: tileH, tileWidth: tileW)
            }
        }
        return sheet
    }

    /// Frame f of `video`, replicated up to the tile size and clipped to [0,1], at (top, left).
    private static func place(_ video: Tensor, frame f: Int, into sheet: Tensor, top y0: Int, left x0: Int, tileHeight tileH: Int, tileWidth tileW: Int) {
        let h = video.shape[2], w = video.shape[3], sy = tileH / h, sx = tileW / w
        let height = sheet.shape[2], width = sheet.shape[3]
        let src = video.frame(f)
        for ch in 0..<3 {
            for y in 0..<tileH {
                let srow = src + ch * h * w + (y / sy) * w
                let drow = sheet.data + ch * height * width + (y0 + y) * width + x0
                for x in 0..<tileW { drow[x] = min(max(srow[x / sx], 0), 1) }
            }
        }
    }
}
