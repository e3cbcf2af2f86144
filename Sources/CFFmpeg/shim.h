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
