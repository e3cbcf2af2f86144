import Foundation

/// Values of options that are not plain numbers, parsed here (not in the executable) so that
/// the fuzz driver reaches them (`Scripts/fuzz`, target `option-values`).
public enum OptionValues {
    /// "8G", "1500M", "2.5G", "1T", "4096" (MB) → bytes; nil for anything else, for a value
    /// that is not finite and positive, or for more than 10¹⁶ bytes.
    public static func bytes(_ s: String) -> Double? {
        let t = s.trimmingCharacters(in: .whitespaces).uppercased()
        var scale = 1_048_576.0, num = Substring(t)
        if t.hasSuffix("G") || t.hasSuffix("GB") { scale = 1_073_741_824; num = t.dropLast(t.hasSuffix("GB") ? 2 : 1) }
        else if t.hasSuffix("M") || t.hasSuffix("MB") { num = t.dropLast(t.hasSuffix("MB") ? 2 : 1) }
        else if t.hasSuffix("T") { scale = 1_099_511_627_776; num = t.dropLast() }
        guard let v = Double(num), v.isFinite, v > 0, v * scale < 1e16 else { return nil }
        return v * scale
    }
}
