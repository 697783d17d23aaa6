package castore.ingest;

/** What an export wrote: files, directories, symlinks and bytes of file content. */
public record ExportStats(long files, long directories, long symlinks, long bytesWritten) {
}
