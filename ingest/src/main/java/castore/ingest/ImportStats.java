package castore.ingest;

/**
 * What an import did: regular files, directories and symlinks seen, bytes read from files (holes
 * included), bytes of blob data the store did not have before, and bytes of files' holes, taken
 * as zeros without reading them.
 */
public record ImportStats(long files, long directories, long symlinks, long bytesRead, long bytesStored, long holeBytes) {
}
