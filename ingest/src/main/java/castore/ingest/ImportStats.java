package castore.ingest;

/**
 * What an import did: regular files, directories and symlinks seen, bytes read from files, and
 * bytes of blob data the store did not have before.
 */
public record ImportStats(long files, long directories, long symlinks, long bytesRead, long bytesStored) {
}
