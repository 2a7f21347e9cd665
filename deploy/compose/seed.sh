#!/bin/sh
# seed.sh uploads a tree of CloudTrail objects to S3 and announces them the
# way CloudTrail does: an SNS notification whose message is
# {"s3Bucket": "...", "s3ObjectKey": ["...", ...]}, a few keys at a time.
#
#   seed.sh BUCKET TOPIC_NAME DIR
#
# It is the compose stack's seed job (the amazon/aws-cli image) and works
# with any AWS CLI pointed at the local stack by AWS_ENDPOINT_URL. DIR is laid
# out as the bucket should be (AWSLogs/<account>/CloudTrail/...). It announces
# every .json.gz and .json object of the bucket, so run it on a bucket of its
# own. Keys must hold no whitespace, quotes or backslashes, as CloudTrail's
# never do.
set -eu

if [ "$#" -ne 3 ]; then
	echo "usage: seed.sh BUCKET TOPIC_NAME DIR" >&2
	exit 2
fi
bucket=$1 topic=$2 dir=${3%/}
per_message=5

# The local stack starts in a moment; wait for it rather than fail.
tries=0
until aws s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; do
	tries=$((tries + 1))
	if [ "$tries" -ge 60 ]; then
		echo "seed: bucket $bucket is not there after 60 tries; is localaws up?" >&2
		exit 1
	fi
	sleep 1
done

# CreateTopic is idempotent and returns the ARN of the existing topic.
topic_arn=$(aws sns create-topic --name "$topic" --query TopicArn --output text)

echo "seed: uploading $dir to s3://$bucket"
aws s3 cp --recursive --only-show-errors "$dir" "s3://$bucket/"

publish() {
	aws sns publish --topic-arn "$topic_arn" --output text --query MessageId \
		--message "{\"s3Bucket\":\"$bucket\",\"s3ObjectKey\":[$1]}" >/dev/null
}

objects=0 messages=0 batch="" n=0
# The keys come back tab-separated, a page per line; CloudTrail keys hold no
# whitespace. Digest files are not announced, as CloudTrail does not.
for key in $(aws s3api list-objects-v2 --bucket "$bucket" --output text \
	--query "Contents[?ends_with(Key, '.json.gz') || ends_with(Key, '.json')].Key | [?!contains(@, '/CloudTrail-Digest/')]"); do
	[ "$key" = None ] && continue
	batch="${batch:+$batch,}\"$key\""
	n=$((n + 1))
	objects=$((objects + 1))
	if [ "$n" -ge "$per_message" ]; then
		publish "$batch"
		messages=$((messages + 1))
		batch="" n=0
	fi
done
if [ -n "$batch" ]; then
	publish "$batch"
	messages=$((messages + 1))
fi
echo "seed: announced $objects objects in $messages notifications on $topic_arn"
