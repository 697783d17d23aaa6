package castore.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.service.StoreOptions;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * {@code profile=NAME} in an address: that profile of the shared AWS files gives the
 * credentials and, unless {@code region=} says otherwise, the region (docs/s3.md, Address).
 * The files are named through the SDK's system properties, so nothing outside the test is read.
 */
class S3ProfileTest {
    private static final List<String> PROPERTIES = List.of("aws.configFile", "aws.sharedCredentialsFile", "aws.disableEc2Metadata",
            "aws.region", "aws.profile");

    @TempDir
    Path tmp;

    private final SavedProperties properties = new SavedProperties();

    @BeforeEach
    void awsFiles() throws Exception {
        for (String p : PROPERTIES) {
            properties.set(p, null);
        }
        Path config = tmp.resolve("config");
        Files.writeString(config, """
                [default]
                output = json

                [profile work]
                region = eu-west-3

                [profile nokeys]
                region = eu-west-3
                """);
        Path credentials = tmp.resolve("credentials");
        Files.writeString(credentials, """
                [work]
                aws_access_key_id = AKIDWORK
                aws_secret_access_key = secretwork
                """);
        properties.set("aws.configFile", config.toString());
        properties.set("aws.sharedCredentialsFile", credentials.toString());
        properties.set("aws.disableEc2Metadata", "true"); // no instance metadata lookups from a test
    }

    @AfterEach
    void restore() {
        properties.close();
    }

    private static S3Client client(String address) {
        return S3StoreProvider.client(S3Location.parse(URI.create(address)), StoreOptions.DEFAULT);
    }

    @Test
    void theNamedProfileGivesTheRegion() {
        try (S3Client client = client("s3://bucket/prefix?profile=work")) {
            assertThat(client.serviceClientConfiguration().region()).isEqualTo(Region.EU_WEST_3);
        }
        // Also with an endpoint, where a missing region would otherwise fall back to us-east-1.
        try (S3Client client = client("s3://bucket/prefix?profile=nokeys&endpoint=http://127.0.0.1:9")) {
            assertThat(client.serviceClientConfiguration().region()).isEqualTo(Region.EU_WEST_3);
        }
    }

    @Test
    void aProfileWithoutCredentialsIsSaidSoNotCalledUnreachable() {
        // The endpoint is never contacted: requests are signed first, and there is nothing to sign with.
        for (String address : List.of("s3://bucket/prefix?profile=missing&endpoint=http://127.0.0.1:9",
                "s3://bucket/prefix?profile=nokeys&endpoint=http://127.0.0.1:9")) {
            assertThatThrownBy(() -> castore.service.Stores.open(address, StoreOptions.DEFAULT).close())
                    .as(address).isInstanceOf(java.io.IOException.class)
                    .hasMessageContaining("no AWS credentials").hasMessageNotContaining("not reachable")
                    .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
        }
    }

    @Test
    void anExplicitRegionWinsOverTheProfiles() {
        try (S3Client client = client("s3://bucket/prefix?profile=work&region=ap-south-1")) {
            assertThat(client.serviceClientConfiguration().region()).isEqualTo(Region.AP_SOUTH_1);
        }
    }
}
