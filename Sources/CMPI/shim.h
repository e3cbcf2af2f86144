// OpenMPI's C API for Swift. MPI's handles and constants are macros (often the address of a
// global), which Swift cannot import: these static inline functions return them.
#include <mpi.h>

static inline MPI_Comm svi_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype svi_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype svi_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype svi_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype svi_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype svi_mpi_int(void) { return MPI_INT; }
static inline MPI_Op svi_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op svi_mpi_max(void) { return MPI_MAX; }
static inline MPI_Status *svi_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *svi_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline MPI_Request svi_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline int svi_mpi_success(void) { return MPI_SUCCESS; }
static inline int svi_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline MPI_Errhandler svi_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
