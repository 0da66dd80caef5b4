# Terraform: the afterglow layer and a function traced without code changes.
# Build the layer first: afterglow layer build --python 3.12 --arch arm64 --output afterglow-layer.zip
resource "aws_lambda_layer_version" "afterglow" {
  layer_name               = "afterglow"
  filename                 = "afterglow-layer.zip"
  source_code_hash         = filebase64sha256("afterglow-layer.zip")
  compatible_runtimes      = ["python3.12"]
  compatible_architectures = ["arm64"]
}

resource "aws_lambda_function" "orders" {
  function_name = "orders"
  role          = var.role_arn
  runtime       = "python3.12"
  architectures = ["arm64"]
  handler       = "app.handler"
  filename      = "function.zip"
  layers        = [aws_lambda_layer_version.afterglow.arn]

  environment {
    variables = {
      AWS_LAMBDA_EXEC_WRAPPER     = "/opt/afterglow-instrument"
      OTEL_EXPORTER_OTLP_ENDPOINT = "https://otlp.example.com:4318"
    }
  }
}

variable "role_arn" {
  type = string
}
