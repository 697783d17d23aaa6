package castore.ingest;

/**
 * What copies between stores did: Directories their walks reached (those the destination had
 * end a walk there), Directories sent, distinct blobs the sent Directories name, of them those
 * the destination lacked (to send, and their bytes), those sent so far and their bytes, and the
 * bytes the destination stored for them (less, where it held some of their chunks).
 */
public record CopyStats(long directories, long directoriesSent, long blobs, long blobsToSend, long blobsSent, long bytesToSend,
        long bytesSent, long bytesStored) {
}
