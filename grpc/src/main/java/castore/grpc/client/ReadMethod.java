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
import java.util.function.IntFunction;

/**
 * tvix's BlobService.Read with the answer's bytes delivered as a plain array: each BlobChunk
 * message is read straight from gRPC's buffers into an array (one copy; the generated parser
 * takes two), and the reader uses that array as the chunk when it arrives in one message. Same
 * method name and wire format; anything but a plain BlobChunk falls back to the generated parser.
 */
final class ReadMethod {
    /** Each message's data in a new array of its exact size. */
    static final MethodDescriptor<ReadBlobRequest, byte[]> READ = BlobServiceGrpc.getReadMethod()
            .toBuilder(BlobServiceGrpc.getReadMethod().getRequestMarshaller(), new ExactMarshaller())
            .build();

    /** A message's data: the first {@code length} bytes of {@code array}. */
    record Received(byte[] array, int length) {
    }

    private ReadMethod() {
    }

    /**
     * Read with each message's data in an array from {@code arrays} (given the length, it returns
     * an array at least that long): for a consumer that gives its arrays back to be filled again.
     */
    static MethodDescriptor<ReadBlobRequest, Received> into(IntFunction<byte[]> arrays) {
        return BlobServiceGrpc.getReadMethod()
                .toBuilder(BlobServiceGrpc.getReadMethod().getRequestMarshaller(), new IntoMarshaller(arrays))
                .build();
    }

    private static final class ExactMarshaller implements MethodDescriptor.Marshaller<byte[]> {
        @Override
        public InputStream stream(byte[] data) {
            return ReadMethod.stream(data, data.length);
        }

        @Override
        public byte[] parse(InputStream in) {
            return ReadMethod.parse(in, byte[]::new).array(); // an array of exactly the length asked for
        }
    }

    private record IntoMarshaller(IntFunction<byte[]> arrays) implements MethodDescriptor.Marshaller<Received> {
        @Override
        public InputStream stream(Received data) {
            return ReadMethod.stream(data.array(), data.length());
        }

        @Override
        public Received parse(InputStream in) {
            return ReadMethod.parse(in, arrays);
        }
    }

    private static InputStream stream(byte[] data, int length) {
        return new ByteArrayInputStream(BlobChunk.newBuilder().setData(com.google.protobuf.ByteString.copyFrom(data, 0, length))
                .build().toByteArray());
    }

    private static final int DATA_TAG = 1 << 3 | 2; // field 1, length-delimited

    private static Received parse(InputStream in, IntFunction<byte[]> arrays) {
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
                            byte[] data = arrays.apply((int) length);
                            if (in.readNBytes(data, 0, (int) length) != length) {
                                throw new IOException("BlobChunk shorter than its length");
                            }
                            return new Received(data, (int) length);
                        }
                        break;
                    }
                }
            }
            InputStream whole = new java.io.SequenceInputStream(new ByteArrayInputStream(header.toByteArray()), in);
            byte[] data = BlobChunk.parseFrom(whole).getData().toByteArray();
            return new Received(data, data.length);
        } catch (IOException e) {
            throw Status.INTERNAL.withDescription("invalid BlobChunk: " + e.getMessage()).withCause(e).asRuntimeException();
        }
    }
}
