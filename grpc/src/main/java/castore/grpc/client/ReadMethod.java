package castore.grpc.client;

import castore.grpc.proto.BlobChunk;
import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.ReadBlobRequest;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;

/**
 * tvix's BlobService.Read with the answer's bytes delivered as a plain array: each BlobChunk
 * message is read straight from gRPC's buffers into an array of its exact size (one copy; the
 * generated parser takes two), and the reader uses that array as the chunk when it arrives in
 * one message. Same method name and wire format; anything but a plain BlobChunk falls back to
 * the generated parser.
 */
final class ReadMethod {
    static final MethodDescriptor<ReadBlobRequest, byte[]> READ = BlobServiceGrpc.getReadMethod()
            .toBuilder(BlobServiceGrpc.getReadMethod().getRequestMarshaller(), new DataMarshaller())
            .build();

    private ReadMethod() {
    }

    private static final class DataMarshaller implements MethodDescriptor.Marshaller<byte[]> {
        private static final int DATA_TAG = 1 << 3 | 2; // field 1, length-delimited

        @Override
        public InputStream stream(byte[] data) {
            return new ByteArrayInputStream(BlobChunk.newBuilder().setData(com.google.protobuf.ByteString.copyFrom(data)).build().toByteArray());
        }

        @Override
        public byte[] parse(InputStream in) {
            try {
                int total = in instanceof KnownLength ? in.available() : -1;
                // The header as read so far, in case we must hand everything to the generated parser.
                var header = new java.io.ByteArrayOutputStream(16);
                int tag = in.read();
                if (tag >= 0) {
                    header.write(tag);
                }
                if (tag == DATA_TAG) {
                    long length = 0;
                    for (int shift = 0; shift < 35; shift += 7) {
                        int b = in.read();
                        if (b < 0) {
                            break;
                        }
                        header.write(b);
                        length |= (long) (b & 0x7f) << shift;
                        if ((b & 0x80) == 0) {
                            if (header.size() + length == total) {
                                byte[] data = new byte[(int) length];
                                if (in.readNBytes(data, 0, data.length) != data.length) {
                                    throw new IOException("BlobChunk shorter than its length");
                                }
                                return data;
                            }
                            break;
                        }
                    }
                }
                InputStream whole = new java.io.SequenceInputStream(new ByteArrayInputStream(header.toByteArray()), in);
                return BlobChunk.parseFrom(whole).getData().toByteArray();
            } catch (IOException e) {
                throw Status.INTERNAL.withDescription("invalid BlobChunk: " + e.getMessage()).withCause(e).asRuntimeException();
            }
        }
    }
}
