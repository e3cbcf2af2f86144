// FFmpeg's C API for Swift (libavformat, libavcodec, libswscale, libavutil). Error codes and
// constants that are macros become static inline functions here.
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libswscale/swscale.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/display.h>
#include <libavutil/error.h>

static inline int svi_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int svi_averror_eof(void) { return AVERROR_EOF; }
static inline int64_t svi_av_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline int svi_av_error_max_string_size(void) { return AV_ERROR_MAX_STRING_SIZE; }
static inline AVRational svi_av_time_base_q(void) { AVRational r = {1, AV_TIME_BASE}; return r; }
static inline int svi_avfmt_globalheader(void) { return AVFMT_GLOBALHEADER; }
static inline int svi_avfmt_nofile(void) { return AVFMT_NOFILE; }
static inline int svi_codec_flag_global_header(void) { return AV_CODEC_FLAG_GLOBAL_HEADER; }
static inline int svi_avio_flag_write(void) { return AVIO_FLAG_WRITE; }
static inline int svi_sws_flags_bicubic_exact(void) { return SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT; }
static inline int svi_sws_flags_point(void) { return SWS_POINT | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT; }
static inline void svi_av_log_errors_only(void) { av_log_set_level(AV_LOG_ERROR); }

#include <libavutil/video_enc_params.h>
#include <libavutil/pixdesc.h>

// Asks the decoder to attach its quantisers to each frame (H.264's are used).
static inline int svi_export_venc_params(void) { return AV_CODEC_EXPORT_DATA_VIDEO_ENC_PARAMS; }
static inline int svi_codec_prop_lossy(void) { return AV_CODEC_PROP_LOSSY; }

// Mean H.264 quantiser of a decoded frame (the frame's base QP plus each block's delta, weighted by
// the block's area), or -1 when the decoder attached none. Reads only what the decoder wrote.
static inline double svi_frame_mean_qp(const AVFrame *f) {
    AVFrameSideData *sd = av_frame_get_side_data(f, AV_FRAME_DATA_VIDEO_ENC_PARAMS);
    if (!sd || sd->size < sizeof(AVVideoEncParams)) return -1;
    AVVideoEncParams *p = (AVVideoEncParams *)sd->data;
    if (p->type != AV_VIDEO_ENC_PARAMS_H264) return -1;   // the QP scale svi maps to an error
    if (p->nb_blocks == 0) return (double)p->qp;
    if (p->blocks_offset + (size_t)p->nb_blocks * p->block_size > sd->size) return -1;
    double sum = 0, area = 0;
    for (unsigned int i = 0; i < p->nb_blocks; i++) {
        AVVideoBlockParams *b = av_video_enc_params_block(p, i);
        double a = (double)b->w * (double)b->h;
        sum += a * (double)(p->qp + b->delta_qp);
        area += a;
    }
    return area > 0 ? sum / area : (double)p->qp;
}
static inline uint64_t svi_pix_fmt_flag_rgb(void) { return AV_PIX_FMT_FLAG_RGB; }
